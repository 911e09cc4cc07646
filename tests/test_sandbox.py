"""The grading sandbox itself (grading/sandbox.py), command by command: fast, no nbgrader.

What a sandboxed process can and cannot do is tested with Debian's own ``/usr/bin/python3`` in a
scratch "course" holding a secret ``source/``, ``gradebook.db``, ``autograder/`` and other
students beside the packages a kernel may see (and with the course's interpreter for the package
view). The nbgrader-level behaviour (kernels, dead kernels, hostile notebooks) is in
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
    for name in ("source", "autograder", "solutions", "interpkit", "witness", "autograded/alice/A",
                 "autograded/bob/A"):
        (root / name).mkdir(parents=True)
    (root / "source" / "secret.txt").write_text("hidden tests")
    (root / "gradebook.db").write_text("grades")
    (root / "autograder" / "__init__.py").write_text("VALUE = 42\n")
    (root / "interpkit" / "__init__.py").write_text("VALUE = 7\n")
    (root / "autograded" / "bob" / "A" / "bob.ipynb").write_text("bob's work")
    return root


def _uid(uid):
    return sandbox.UID_BASE + 4242 if uid is None and sandbox.running_as_root() else uid


def run_in_sandbox(root: Path, code: str, limits=sandbox.Limits(), uid=None, timeout=60, python=PY,
                   view: list[str] = (), binds=()) -> subprocess.CompletedProcess:
    readonly = [root / p for p in sandbox.COURSE_PACKAGES]
    if python != PY:
        readonly += sandbox.python_paths()
    argv = sandbox.bwrap_argv([python, "-c", code], readonly=readonly, python=list(view), binds=binds,
                              env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                              limits=limits, uid=_uid(uid))
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"" for p in root.rglob("*")}


def test_sandbox_is_available_here():
    """CI installs bubblewrap (make sandbox): grading must never silently run unprotected."""
    sandbox.probe()


def test_file_system_shows_only_the_kernels_packages_and_keeps_nothing(scratch):
    root = scratch
    before = _tree(root)
    code = f"""
import os
print(sorted(os.listdir({str(root)!r})))
import interpkit; print("import", interpkit.VALUE)
try:
    import autograder; print("AUTOGRADER")
except ImportError:
    print("no autograder")
for path in [{str(root / 'source/secret.txt')!r}, {str(root / 'gradebook.db')!r},
             {str(root / 'autograded/bob/A/bob.ipynb')!r}, '/root/.bashrc', '/etc/shadow']:
    try:
        open(path).read(); print("READ", path)
    except OSError as err:
        print("denied", type(err).__name__)
for path in [{str(root / 'interpkit/x.py')!r}, {str(root / 'gradebook.db')!r},
             {str(root / 'autograded/alice/A/x')!r}, '/usr/evil', '/sandbox/inputs/x']:
    try:
        open(path, 'w').write('x'); print("WROTE", path)
    except OSError as err:
        print("denied", type(err).__name__)
print("cwd", os.getcwd())
open('mine.txt', 'w').write('ok'); open('/tmp/t', 'w').write('ok'); print("scratch ok")
print("uid", os.getuid())
"""
    proc = run_in_sandbox(root, code)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert out.splitlines()[0] == "['interpkit', 'witness']"
    assert "import 7" in out and "no autograder" in out and "scratch ok" in out
    assert f"cwd {sandbox.WORKDIR}" in out
    assert "READ" not in out and "WROTE" not in out, out
    assert _tree(root) == before, "the kernel's writes must never reach the host"
    if sandbox.running_as_root():
        assert f"uid {sandbox.UID_BASE + 4242}" in out


def test_scratch_space_is_bounded_memory_and_links_lead_nowhere(scratch):
    """Every writable place is a size-limited tmpfs; links and FIFOs made there stay there."""
    limits = sandbox.Limits(work_bytes=8 * 2 ** 20, tmp_bytes=8 * 2 ** 20, shm_bytes=8 * 2 ** 20)
    proc = run_in_sandbox(scratch, f"""
import os
for folder in ['.', '/tmp', '/dev/shm']:
    try:
        with open(os.path.join(folder, 'fill'), 'wb') as f:
            f.write(b'x' * (16 * 2 ** 20))
        print('FILLED', folder)
    except OSError as err:
        print('full', folder, err.errno)
os.symlink({str(scratch / 'gradebook.db')!r}, 'link')
try:
    open('link').read(); print('READ THROUGH LINK')
except OSError:
    print('link dangles')
os.mkfifo('fifo'); print('fifo made')
try:
    os.mknod('dev', 0o600 | 0o020000, os.makedev(1, 3)); print('DEVICE')
except OSError:
    print('no device nodes')
""", limits=limits)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("full") == 3 and "FILLED" not in proc.stdout
    assert "link dangles" in proc.stdout and "fifo made" in proc.stdout and "no device nodes" in proc.stdout
    assert not any(p.is_symlink() or p.name in ("fifo", "fill") for p in scratch.rglob("*"))


def test_the_kernel_sees_the_students_packages_only(scratch):
    """The course interpreter inside the sandbox: torch and the toolbox import; the test-only
    oracles and the grading tools do not exist there (grading/kernel_env.py)."""
    proc = run_in_sandbox(scratch, """
import importlib
for name in ['torch', 'torchvision', 'numpy', 'skimage', 'ipykernel', 'cloudpickle', 'interpkit',
             'captum', 'pytorch_grad_cam', 'cv2', 'nbgrader', 'pytest', 'sklearn']:
    try:
        importlib.import_module(name); print('ok', name)
    except ImportError:
        print('missing', name)
""", python=sys.executable, view=sandbox.kernel_python_view(), timeout=180)
    assert proc.returncode == 0, proc.stderr
    for name in ("torch", "torchvision", "numpy", "skimage", "ipykernel", "cloudpickle", "interpkit"):
        assert f"ok {name}" in proc.stdout, proc.stdout
    for name in ("captum", "pytorch_grad_cam", "cv2", "nbgrader", "pytest", "sklearn"):
        assert f"missing {name}" in proc.stdout, proc.stdout


def test_staging_copies_regular_files_only_within_budget(tmp_path, monkeypatch):
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "data").mkdir(parents=True)
    dest.mkdir()
    (src / "data" / "table.csv").write_text("a,b")
    (src / "helper.py").write_text("X = 1")
    (src / "L2A2.ipynb").write_text("{}")
    (src / "timestamp.txt").write_text("2030")
    (src / ".hidden").write_text("x")
    (src / "link").symlink_to("/etc/passwd")
    os.mkfifo(src / "fifo")
    monkeypatch.setattr(sandbox, "STAGE_MAX_FILES", 2)
    skipped = sandbox.stage_inputs(src, dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == ["data/table.csv", "helper.py"]
    assert any("link" in s for s in skipped) and any("fifo" in s for s in skipped)
    (src / "more.py").write_text("Y = 2")
    assert any("budget" in s for s in sandbox.stage_inputs(src, tmp_path / "again"))


def test_no_network(scratch):
    proc = run_in_sandbox(scratch, """
import socket
for target in [('pypi.org', 443), ('1.1.1.1', 53), ('127.0.0.1', 22)]:
    try:
        socket.create_connection(target, timeout=3); print("CONNECTED", target)
    except OSError as err:
        print("refused", type(err).__name__)
""")
    assert proc.returncode == 0 and "CONNECTED" not in proc.stdout and proc.stdout.count("refused") == 3


def test_limits_contain_fork_bomb_and_memory_hog(scratch):
    limits = sandbox.Limits(memory_bytes=1024 ** 3, processes=32, cpu_seconds=20)
    proc = run_in_sandbox(scratch, """
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
    proc = run_in_sandbox(scratch, "while True: pass",
                          limits=sandbox.Limits(cpu_seconds=2), timeout=60)
    assert proc.returncode != 0  # SIGXCPU (bwrap reports the signal as 128 + n)


def test_unprivileged_caller_gets_a_user_namespace(scratch):
    """Grading as a normal user: bubblewrap maps that user into a new user namespace (as root,
    the test first becomes the unprivileged user ``nobody``)."""
    root = scratch
    become = []
    if sandbox.running_as_root():
        nobody = 65534
        become = ["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups"]
        for path in [root.parent, root, *root.rglob("*")]:
            os.chown(path, nobody, nobody)
        for p in (p for p in root.parents if p != Path("/")):  # let nobody through pytest's tmp
            os.chmod(p, os.stat(p).st_mode | 0o011)
    argv = sandbox.bwrap_argv([PY, "-c", "import os; print('inside', os.getuid()); "
                               "open('mine.txt','w').write('x'); print(os.listdir('.'))"],
                              readonly=[root / "interpkit"], uid=None)
    proc = subprocess.run([*become, *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "inside 65534" in proc.stdout and "['mine.txt']" in proc.stdout


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


def test_nbgrader_config_uses_the_trusted_steps():
    """`nbgrader autograde` stays the command: the course config rebuilds each submission from
    the release first, swaps in the trusted Execute, keeps nbgrader's other steps (late penalties
    included), flags reviews after saving scores, and installs the intake hook."""
    proc = subprocess.run(
        [sys.executable, "-c",
         "from traitlets.config.loader import PyFileConfigLoader as L;"
         "c = L('nbgrader_config.py', path='.').load_config();"
         "print(c.Autograde.sanitize_preprocessors); print(c.Autograde.autograde_preprocessors);"
         "print(c.Autograde.pre_convert_hook); print(c.HTMLExporter.sanitize_html)"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    sanitize, steps, hook, sanitized = proc.stdout.splitlines()[:4]
    assert sanitize.startswith("['grading.rebuild.RebuildFromRelease'") and "OverwriteCells" in sanitize
    assert "grading.execute.TrustedExecute" in steps and "nbgrader.preprocessors.execute.Execute" not in steps
    assert steps.index("SaveAutoGrades") < steps.index("grading.review.FlagForReview") < steps.index("AssignLatePenalties")
    assert "repair_submission" in hook and sanitized == "True"
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

    from grading.execute import TrustedExecute

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    c = Config()
    c.Execute.timeout = 60
    for key, value in config.items():
        section, name = key.split("__")
        setattr(c[section], name, value)
    work = tmp_path / "work"
    work.mkdir()
    nb, _ = TrustedExecute(config=c).preprocess(nb, {"metadata": {"path": str(work)}})
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
        TrustedExecute__max_cell_output_bytes=4_000_000,
        TrustedExecute__max_notebook_output_bytes=3_000_000)
    assert "output budget" in _text(outs[0]) and "x" * 100 not in _text(outs[0])
    assert "y" * 100 in _text(outs[1])
    assert "output budget" in _text(outs[2]) and "z" * 100 not in _text(outs[2])
    assert any(o.output_type == "error" and "the wrong answer" in o.evalue for o in outs[3])
    assert any(o.output_type == "execute_result" and o.data["text/plain"] == "0.25" for o in outs[4])
