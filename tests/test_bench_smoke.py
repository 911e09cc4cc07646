"""Smoke test of bench/bench_gradcam.py: it runs, and prints its table with the ratio columns.

The figures themselves are not checked (timings are noisy on shared CI machines); ``make bench``
is where they are read. ``--quick --models resnet50`` takes about 10-20 s on 2 cores.
"""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "bench_gradcam.py"


def _python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def test_bench_gradcam_quick_runs_and_prints_ratios():
    env = dict(os.environ, INTERPKIT_ALLOW_RANDOM_WEIGHTS="1", PYTHONWARNINGS="ignore",
               # one thread: under pytest-xdist the other workers share the cores
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([_python(), str(SCRIPT), "--quick", "--models", "resnet50"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr}"
    for column in ("fwd+bwd", "grad_cam", "captum", "pgc", "gc/fwd+bwd", "gc/captum", "gc/pgc",
                   "both/2x gc", "(<=1.10)", "(<=1.00)"):
        assert column in out, f"column {column!r} missing from:\n{out}"
    ratio_line = next(line for line in out.splitlines() if line.startswith("resnet50") and "x " in line)
    assert ("PASS" in ratio_line or "MISS" in ratio_line), ratio_line
    assert "torch.get_num_threads() = 1" in out


def test_bench_module_imports_without_running():
    code = ("import runpy, sys; sys.argv = ['x']; "
            f"ns = runpy.run_path({str(SCRIPT)!r}, run_name='bench_gradcam'); "
            "assert callable(ns['main']) and ns['GOAL_VS_FWD_BWD'] == 1.10")
    proc = subprocess.run([_python(), "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Absolute times" not in proc.stdout
