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


def test_bench_autograde_report_and_one_real_submission():
    """bench/bench_autograde.py: the ratio/goal/per-submission table on fake timings, then one
    real per-submission measurement (L2A2, trusted and previous path, 1 repeat, no batch) run as
    a subprocess. The full --quick mode (with a batch) takes several minutes on 2 cores: too long
    here. This part takes about 1.5 minutes."""
    from bench.bench_autograde import PREVIOUS, TRUSTED, Row, format_report

    rows = [Row("per submission", "L2A2_gradcam", 1, {TRUSTED: [11.0, 13.2, 12.1],
                                                      PREVIOUS: [11.0, 11.0, 11.0]}),
            Row("batch", "L2A2_gradcam", 4, {TRUSTED: [40.0], PREVIOUS: [50.0]})]
    assert abs(rows[0].ratio - 1.10) < 1e-9 and not rows[0].met
    assert rows[1].met and rows[1].spread is None
    report = format_report(rows, repeats=3)
    single, batch = (next(line for line in report.splitlines() if line.startswith(kind))
                     for kind in ("per submission", "batch"))
    assert "1.10x" in single and "missed" in single and "18%" in single, report
    assert "0.80x" in batch and " met " in batch and "10.0" in batch and "12.5" in batch, report
    assert "MISSED on per submission L2A2_gradcam" in report

    env = dict(os.environ, INTERPKIT_ALLOW_RANDOM_WEIGHTS="1", PYTHONWARNINGS="ignore",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([_python(), str(REPO / "bench" / "bench_autograde.py"), "--repeats", "1",
                           "--warmup", "0", "--batch", "0", "--assignments", "L2A2_gradcam"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr}"
    line = next(line for line in out.splitlines() if line.startswith("per submission"))
    assert "L2A2_gradcam" in line and ("met" in line or "missed" in line), out
    seconds = [float(x) for x in line.split()[4:6]]  # trusted s, previous s
    assert all(s > 1 for s in seconds), out
    assert not any(line.startswith("batch") for line in out.splitlines()), out


def test_bench_grade_all_report_and_a_small_real_run():
    """bench/bench_grade_all.py: the table and the goal's verdict on fake timings (fits 100
    columns), then a real run on 2 submissions (serial, then grade_all on 2 workers in-process)
    as a subprocess: about 1.5 minutes on 2 cores. The 20-submission figure is `make bench`'s."""
    from bench.bench_grade_all import SERIAL, format_report

    report = format_report({SERIAL: 200.0, "process": 110.0, "subprocess": 125.0}, 20, 2)
    assert max(len(line) for line in report.splitlines()) <= 100, report
    process = next(line for line in report.splitlines() if "in-process" in line)
    assert "1.82x" in process and "met" in process and "5.5" in process, report
    assert "1.60x" in next(line for line in report.splitlines() if "subprocess" in line)
    assert "Goal: grade_all on 2 workers at least 1.7x faster than serial: met." in report
    assert "MISSED (1.50x)" in format_report({SERIAL: 150.0, "process": 100.0}, 20, 2)

    env = dict(os.environ, INTERPKIT_ALLOW_RANDOM_WEIGHTS="1", PYTHONWARNINGS="ignore",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PATH=f"{Path(_python()).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run([_python(), str(REPO / "bench" / "bench_grade_all.py"), "--batch", "2",
                           "--modes", "process"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr}"
    serial = next(line for line in out.splitlines() if line.startswith("nbgrader autograde (serial)"))
    parallel = next(line for line in out.splitlines() if line.startswith("grade_all, 2 workers"))
    assert serial.split()[3] == "2" and float(serial.split()[4]) > 1, out
    assert "x" in parallel and ("met" in parallel or "MISSED" in parallel), out


def test_bench_saliency_quick_runs_and_prints_costs_beside_captum():
    """bench/bench_saliency.py --quick on ResNet18 at 64 px (2 reps, 4 samples and steps): it runs,
    prints each method's cost in forward+backward passes beside captum's, the ratio table with a
    verdict per method, and ours and captum's maps agree (about 10-20 s on 2 cores)."""
    env = dict(os.environ, INTERPKIT_ALLOW_RANDOM_WEIGHTS="1", PYTHONWARNINGS="ignore",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([_python(), str(REPO / "bench" / "bench_saliency.py"), "--quick", "--models", "resnet18"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr}"
    assert "Cost in forward+backward passes" in out and "Ours / captum's (goal <= 1.10x)" in out, out
    for column in ("fwd+bwd ms", "saliency (captum)", "smoothgrad (captum)", "ig (captum)", "guided (captum)",
                   "guided_gc (captum)", "max|d| vs captum"):
        assert column in out, f"column {column!r} missing from:\n{out}"
    cost, ratio = (line for line in out.splitlines() if line.startswith("resnet18"))
    assert cost.count("x (") == 5, cost
    assert ratio.count("PASS") + ratio.count("MISS") == 5, ratio
    assert float(ratio.split()[-2] if not ratio.endswith(")") else ratio.split()[-3]) <= 1e-4, ratio
    assert "torch.get_num_threads() = 1" in out
