"""The grading sandbox itself (grading/sandbox.py), command by command: fast, no nbgrader.

What a sandboxed process can and cannot do is tested with Debian's own ``/usr/bin/python3`` in a
scratch "course" holding a secret ``source/`` and ``gradebook.db`` beside the packages it may see.
The nbgrader-level behaviour (kernels, dead kernels, hostile notebooks) is in
test_bad_submissions.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grading import sandbox

PY = "/usr/bin/python3"


@pytest.fixture
def scratch(tmp_path):
    root = tmp_path / "course"
    for name in ("source", "autograder", "solutions", "interpkit", "autograded/alice/A",
                 "autograded/bob/A"):
        (root / name).mkdir(parents=True)
    (root / "source" / "secret.txt").write_text("hidden tests")
    (root / "gradebook.db").write_text("grades")
    (root / "autograder" / "__init__.py").write_text("VALUE = 42\n")
    (root / "autograded" / "bob" / "A" / "bob.ipynb").write_text("bob's work")
    work = root / "autograded" / "alice" / "A"
    return root, work


def run_in_sandbox(root: Path, work: Path, code: str, limits=sandbox.Limits(), uid=None,
                   timeout=60) -> subprocess.CompletedProcess:
    if uid is None and sandbox.running_as_root():
        uid = sandbox.UID_BASE + 4242
    if uid is not None:
        os.chown(work, uid, uid)
    readonly = [root / p for p in sandbox.COURSE_PACKAGES]
    argv = sandbox.bwrap_argv([PY, "-c", code], workdir=work, readonly=readonly,
                              env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                              limits=limits, uid=uid)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def test_sandbox_is_available_here():
    """CI installs bubblewrap (make sandbox): grading must never silently run unprotected."""
    sandbox.probe()


def test_file_system_shows_only_what_grading_needs(scratch):
    root, work = scratch
    code = f"""
import os
print(sorted(os.listdir({str(root)!r})))
import autograder; print("import", autograder.VALUE)
for path in [{str(root / 'source/secret.txt')!r}, {str(root / 'gradebook.db')!r},
             {str(root / 'autograded/bob/A/bob.ipynb')!r}, '/root/.bashrc', '/etc/shadow']:
    try:
        open(path).read(); print("READ", path)
    except OSError as err:
        print("denied", type(err).__name__)
for path in [{str(root / 'autograder/x.py')!r}, {str(root / 'gradebook.db')!r}, '/usr/evil']:
    try:
        open(path, 'w').write('x'); print("WROTE", path)
    except OSError as err:
        print("denied", type(err).__name__)
open('mine.txt', 'w').write('ok'); open('/tmp/t', 'w').write('ok'); print("own folder ok")
print("uid", os.getuid())
"""
    proc = run_in_sandbox(root, work, code)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert out.splitlines()[0] == "['autograded', 'autograder', 'interpkit', 'solutions']"
    assert "import 42" in out and "own folder ok" in out
    assert "READ" not in out and "WROTE" not in out, out
    assert (work / "mine.txt").read_text() == "ok"
    assert (root / "gradebook.db").read_text() == "grades"
    assert not (root / "autograder" / "x.py").exists()
    if sandbox.running_as_root():
        assert f"uid {sandbox.UID_BASE + 4242}" in out


def test_no_network(scratch):
    root, work = scratch
    proc = run_in_sandbox(root, work, """
import socket
for target in [('pypi.org', 443), ('1.1.1.1', 53), ('127.0.0.1', 22)]:
    try:
        socket.create_connection(target, timeout=3); print("CONNECTED", target)
    except OSError as err:
        print("refused", type(err).__name__)
""")
    assert proc.returncode == 0 and "CONNECTED" not in proc.stdout and proc.stdout.count("refused") == 3


def test_limits_contain_fork_bomb_and_memory_hog(scratch):
    root, work = scratch
    limits = sandbox.Limits(memory_bytes=1024 ** 3, processes=32, cpu_seconds=20)
    proc = run_in_sandbox(root, work, """
import os, time
n = 0
try:
    for _ in range(1000):
        if os.fork() == 0:
            time.sleep(5); os._exit(0)
        n += 1
except OSError as err:
    print("forks stopped at", n, type(err).__name__)
try:
    blob = bytearray(2 * 1024 ** 3)
    print("ALLOCATED")
except MemoryError:
    print("memory refused")
""", limits=limits)
    assert "forks stopped at" in proc.stdout and "memory refused" in proc.stdout, proc.stdout + proc.stderr
    assert int(proc.stdout.split("forks stopped at")[1].split()[0]) < 32


def test_cpu_limit_kills_a_spinning_process(scratch):
    root, work = scratch
    proc = run_in_sandbox(root, work, "while True: pass",
                          limits=sandbox.Limits(cpu_seconds=2), timeout=60)
    assert proc.returncode != 0  # SIGXCPU (bwrap reports the signal as 128 + n)


def test_unprivileged_caller_gets_a_user_namespace(scratch):
    """Grading as a normal user: bubblewrap maps that user into a new user namespace (as root,
    the test first becomes the unprivileged user ``nobody``)."""
    root, work = scratch
    become = []
    if sandbox.running_as_root():
        nobody = 65534
        become = ["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups"]
        for path in [root.parent, root, *root.rglob("*")]:
            os.chown(path, nobody, nobody)
        for p in (p for p in root.parents if p != Path("/")):  # let nobody through pytest's tmp
            os.chmod(p, os.stat(p).st_mode | 0o011)
    argv = sandbox.bwrap_argv([PY, "-c", "import os; print('inside', os.getuid()); "
                               "open('mine.txt','w').write('x')"],
                              workdir=work, readonly=[root / "autograder"], uid=None)
    proc = subprocess.run([*become, *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "inside 65534" in proc.stdout and (work / "mine.txt").exists()


def test_autograde_refuses_without_bwrap_unless_opted_out(monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv(sandbox.OPT_OUT_ENV, raising=False)
    with pytest.raises(sandbox.SandboxUnavailableError, match="bubblewrap|bwrap"):
        sandbox.probe()
    with pytest.raises(SystemExit):
        sandbox.refuse_unless_available(["nbgrader", "autograde", "A"])
    assert "refusing to run students' code" in capsys.readouterr().err
    sandbox.refuse_unless_available(["nbgrader", "generate_feedback", "A"])  # no student code
    monkeypatch.setenv(sandbox.OPT_OUT_ENV, "off")
    sandbox.refuse_unless_available(["nbgrader", "autograde", "A"])  # explicit opt-out


def test_nbgrader_config_uses_the_sandboxed_execute():
    """`nbgrader autograde` stays the command: the course config swaps in the sandboxed Execute,
    keeps nbgrader's other steps (late penalties included) and installs the intake hook."""
    proc = subprocess.run(
        [sys.executable, "-c",
         "from traitlets.config.loader import PyFileConfigLoader as L;"
         "c = L('nbgrader_config.py', path='.').load_config();"
         "print(c.Autograde.autograde_preprocessors); print(c.Autograde.pre_convert_hook)"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    assert "grading.execute.SandboxedExecute" in proc.stdout
    assert "AssignLatePenalties" in proc.stdout and "SaveAutoGrades" in proc.stdout
    assert "repair_submission" in proc.stdout
    assert shutil.which("bwrap")


def test_nbgrader_autograde_refuses_when_bwrap_is_missing(tmp_path):
    """The instructor's own command stops with the reason (and grades nobody) without bwrap."""
    from grading import course

    root = course.copy_course(tmp_path / "course")
    venv_bin = str(Path(sys.executable).parent)
    with pytest.raises(RuntimeError) as err:
        course.nbgrader("autograde", "L2A2_gradcam", root=root, env={"PATH": venv_bin})
    assert "refusing to run students' code" in str(err.value) and "bwrap" in str(err.value)
    assert not (root / "autograded").exists()


def _run_notebook(tmp_path, cells: list[str], **config) -> list:
    """Execute ``cells`` with the grading Execute step; return each cell's outputs."""
    import nbformat
    from traitlets.config import Config

    from grading.execute import SandboxedExecute

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    c = Config()
    c.Execute.timeout = 60
    for key, value in config.items():
        section, name = key.split("__")
        setattr(c[section], name, value)
    work = tmp_path / "work"
    work.mkdir()
    nb, _ = SandboxedExecute(config=c).preprocess(nb, {"metadata": {"path": str(work)}})
    return [cell.outputs for cell in nb.cells]


def _text(outputs) -> str:
    return " ".join(str(o.get("text") or o.get("evalue") or o.get("data", "")) for o in outputs)


def test_grading_kernel_survives_death_and_replays_earlier_cells(tmp_path):
    outs = _run_notebook(tmp_path, [
        "import os\nstate = 41",
        "os._exit(1)",
        "print('after', state + 1, os.getuid())",
    ], SandboxKernelManager__course_root=str(Path(__file__).resolve().parents[1]))
    assert "exited with status 1" in _text(outs[1]) and "fresh kernel" in _text(outs[1])
    assert "after 42" in _text(outs[2])
    uid = int(_text(outs[2]).split("after 42")[1].split()[0])
    assert uid >= sandbox.UID_BASE if sandbox.running_as_root() else uid == 65534


def test_opting_out_runs_an_ordinary_kernel(tmp_path, monkeypatch):
    """INTERP_GRADING_SANDBOX=off: a plain local kernel (tcp), the instructor's own uid."""
    monkeypatch.setenv(sandbox.OPT_OUT_ENV, "off")
    outs = _run_notebook(tmp_path, ["import os; print('uid', os.getuid())"])
    assert f"uid {os.getuid()}" in _text(outs[0])


def test_output_flood_never_hides_errors_or_results(tmp_path):
    """Dropping output past the budget must not turn a failing test cell into a passing one:
    errors and results (what nbgrader scores from) always survive a full budget."""
    outs = _run_notebook(tmp_path, [
        "print('x' * 5_000_000)",                  # past the 4 MB cell budget: dropped
        "print('y' * 2_999_900)",                  # kept: the 3 MB notebook budget is now full
        "print('z' * 10_000)",                     # dropped: no room left
        "raise ValueError('the wrong answer')",    # kept although no room is left
        "print('w' * 10_000)\n0.25",              # the value is kept, the print is not
    ], SandboxKernelManager__course_root=str(Path(__file__).resolve().parents[1]),
        SandboxedExecute__max_cell_output_bytes=4_000_000,
        SandboxedExecute__max_notebook_output_bytes=3_000_000)
    assert "output budget" in _text(outs[0]) and "x" * 100 not in _text(outs[0])
    assert "y" * 100 in _text(outs[1])
    assert "output budget" in _text(outs[2]) and "z" * 100 not in _text(outs[2])
    assert any(o.output_type == "error" and "the wrong answer" in o.evalue for o in outs[3])
    assert any(o.output_type == "execute_result" and o.data["text/plain"] == "0.25" for o in outs[4])
