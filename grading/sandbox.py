"""Sandboxed grading kernels, built from Debian's bubblewrap (``bwrap``).

nbgrader runs each student's notebook in a Jupyter kernel with the instructor's own permissions, on
the machine that holds every submission and the gradebook. Here every grading kernel instead runs
inside a bubblewrap sandbox:

- **File system**: read-only, and only what a kernel needs: the system (``/usr``, ``/etc``), the
  Python installation, the course packages (``interpkit``, ``autograder``, ``solutions``: hidden
  tests import the last two), and the torch weights cache. Writable: the student's own
  ``autograded/<student>/<assignment>/`` folder (the kernel's working directory), a private
  ``/tmp`` and the kernel's private connection folder. ``source/``, ``submitted/``, other students'
  folders, ``feedback/``, ``gradebook.db`` and the instructor's home are not there at all.
- **No network**: a new, empty network namespace (the kernel talks to nbgrader over Unix sockets in
  its connection folder, ZeroMQ's ``ipc`` transport).
- **Limits** (:class:`Limits`): address space, processes/threads, CPU time, file size, open files.
- **Unprivileged**: when grading runs as root, the kernel runs as a numeric uid of its own (no
  capabilities, ``no_new_privs``), so root-only files stay unreadable and the process limit counts
  only that kernel's processes. Without root, bubblewrap maps the grader's uid into a new user
  namespace instead.

nbgrader reaches this through its normal configuration: ``nbgrader_config.py`` replaces the
``Execute`` preprocessor with :class:`grading.execute.SandboxedExecute`, whose kernel manager is
:class:`SandboxKernelManager`. Where ``bwrap`` is missing or cannot create namespaces, grading
refuses with :class:`SandboxUnavailableError` unless the instructor opts out explicitly with
``INTERP_GRADING_SANDBOX=off`` (environment) or ``c.SandboxKernelManager.enabled = False``.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Integer, List, Unicode

#: Environment switch for the explicit opt-out: ``INTERP_GRADING_SANDBOX=off``.
OPT_OUT_ENV = "INTERP_GRADING_SANDBOX"
OPT_OUT_VALUES = ("off", "0", "no", "false")

#: The course packages a grading kernel may import (relative to the course root).
COURSE_PACKAGES = ("interpkit", "autograder", "solutions")

#: Environment variables passed into the sandbox (everything else, e.g. tokens or credentials in
#: the instructor's environment, is dropped). Prefixes end with ``_``.
ENV_PASSTHROUGH = (
    "INTERPKIT_", "NBGRADER_", "OMP_", "MKL_", "OPENBLAS_", "TORCH_", "PYTHONHASHSEED",
    "MPLBACKEND", "LANG", "LC_", "TZ", "JPY_", "PYDEVD_",
)

#: Where sandbox uids start when grading runs as root (far above any real account).
UID_BASE = 200_000
UID_SPAN = 100_000

_GiB = 1024 ** 3


class SandboxUnavailableError(RuntimeError):
    """The sandbox cannot be built on this machine; grading must not run unprotected."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one grading kernel (``setrlimit``, enforced by the kernel).

    ``memory_bytes`` bounds the address space (``RLIMIT_AS``): importing torch alone maps about
    3.3 GB, so the default leaves the notebook about 8 GB. ``processes`` bounds processes *and*
    threads of the sandbox's uid (``RLIMIT_NPROC``). ``cpu_seconds`` is per process (SIGXCPU, then
    SIGKILL). ``file_bytes`` bounds any single file written.
    """

    memory_bytes: int = 12 * _GiB
    processes: int = 256
    cpu_seconds: int = 3600
    file_bytes: int = 1 * _GiB
    open_files: int = 1024

    def prlimit_args(self) -> list[str]:
        """Arguments for util-linux ``prlimit`` (soft = hard; CPU gets 10 s between them)."""
        return [
            f"--as={self.memory_bytes}",
            f"--nproc={self.processes}",
            f"--cpu={self.cpu_seconds}:{self.cpu_seconds + 10}",
            f"--fsize={self.file_bytes}",
            f"--nofile={self.open_files}",
            f"--core=0",
        ]


def opted_out(environ: dict[str, str] | None = None) -> bool:
    """True when the instructor switched the sandbox off with ``INTERP_GRADING_SANDBOX=off``."""
    value = (environ if environ is not None else os.environ).get(OPT_OUT_ENV, "")
    return value.strip().lower() in OPT_OUT_VALUES


def running_as_root() -> bool:
    return os.geteuid() == 0


def _tools() -> dict[str, str]:
    """Absolute paths of the programs the sandbox needs; raise with the fix when one is missing."""
    needed = ("bwrap", "prlimit") + (("setpriv",) if running_as_root() else ())
    found = {name: shutil.which(name) for name in needed}
    missing = [name for name, path in found.items() if not path]
    if missing:
        raise SandboxUnavailableError(
            f"The grading sandbox needs {', '.join(missing)}, which is not installed. "
            "Install it with `make sandbox` (Debian/Ubuntu: `apt-get install bubblewrap "
            "util-linux`), or, only if you accept running students' code unprotected with your "
            f"own permissions, opt out with {OPT_OUT_ENV}=off."
        )
    return found  # type: ignore[return-value]


def _existing(paths: Iterable[Path | str]) -> list[Path]:
    seen: list[Path] = []
    for p in paths:
        p = Path(p).resolve()
        if p.exists() and p not in seen:
            seen.append(p)
    return seen


def python_paths() -> list[Path]:
    """Folders holding this Python installation: prefixes and every import path outside them.

    The virtual environment's ``bin/python`` is a symlink into the base installation, so both
    prefixes are needed (resolved: the sandbox shows them at their real paths).
    """
    roots = _existing([sys.base_prefix, sys.prefix, sys.exec_prefix])
    extra = [p for p in _existing(x for x in sys.path if x and os.path.isabs(x))
             if not any(p == r or r in p.parents for r in roots) and p.is_dir()
             and p.name in ("site-packages", "dist-packages")]
    return roots + extra


def torch_cache_dir() -> Path:
    """torch's hub folder (pretrained weights), found the way ``torch.hub.get_dir`` finds it,
    without importing torch in the grader."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch")
    return Path(home).resolve()


def _parents(path: Path) -> list[Path]:
    return [p for p in reversed(path.parents) if p != Path("/")]


def _root_layout() -> list[str]:
    """The read-only system: /usr and /etc bound, the usual top-level symlinks recreated."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/") / name
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    args += ["--ro-bind", "/etc", "/etc"]
    return args


def bwrap_argv(command: Sequence[str], *, workdir: Path, writable: Sequence[Path] = (),
               readonly: Sequence[Path] = (), env: dict[str, str] | None = None,
               limits: Limits = Limits(), uid: int | None = None,
               info_fd: int | None = None, tools: dict[str, str] | None = None) -> list[str]:
    """The full command line that runs ``command`` sandboxed in ``workdir``.

    ``readonly`` and ``writable`` folders appear at their own absolute paths (their parents as
    empty 0755 folders); ``workdir`` is writable and the working directory. ``env`` is the
    complete environment inside (nothing else is inherited). ``uid``: run as this numeric uid
    (needs root; the sandbox is then built with root's mount privileges and entered through
    ``setpriv``); ``None``: bubblewrap's user namespace with the caller's uid. ``info_fd``: a file
    descriptor on which bubblewrap writes ``{"child-pid": ...}`` (the sandbox's init, whose
    child is ``command``).
    """
    tools = tools or _tools()
    args = [tools["bwrap"]]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    args += _root_layout()
    # Before the binds: a bind below /tmp (a scratch course, the connection folder) must land on
    # top of the private /tmp, not be hidden by it.
    args += ["--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp",
             "--perms", "1777", "--tmpfs", "/dev/shm"]
    binds = [("--ro-bind", Path(p)) for p in readonly]
    binds += [("--bind", Path(p)) for p in (*writable, workdir)]
    made: set[Path] = set()
    for _, path in binds:
        for parent in _parents(path):
            if parent not in made and not any(parent == b or b in parent.parents
                                              for _, b in binds if b != path):
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
    for flag, path in binds:
        args += [flag, str(path), str(path)]
    if uid is None:
        # The caller's own files would look like its own inside: hide the usual secrets in /etc.
        for secret in ("/etc/shadow", "/etc/gshadow"):
            if os.path.exists(secret):
                args += ["--ro-bind", "/dev/null", secret]
    args += [
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup-try", "--die-with-parent", "--chdir", str(workdir),
        "--clearenv",
    ]
    if uid is None:
        args += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL"]
    for key, value in (env or {}).items():
        args += ["--setenv", key, value]
    args.append("--")
    if uid is not None:
        args += [tools["setpriv"], f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
                 # Changing uid clears bubblewrap's parent-death signal: set it again.
                 "--pdeathsig=SIGKILL"]
    args += [tools["prlimit"], *limits.prlimit_args(), "--", *command]
    return args


def sandbox_env(environ: dict[str, str], course_root: Path) -> dict[str, str]:
    """The kernel's environment: the passthrough variables, a private home, the course on the
    import path, the torch cache where the sandbox shows it."""
    env = {k: v for k, v in environ.items() if k.startswith(ENV_PASSTHROUGH)}
    env.update({
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "PYTHONPATH": str(course_root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TORCH_HOME": str(torch_cache_dir()),
        OPT_OUT_ENV: "inside",
    })
    return env


def probe(course_root: Path | None = None, uid: int | None = None) -> None:
    """Build a throw-away sandbox and run ``true`` in it; raise :class:`SandboxUnavailableError`
    with bubblewrap's own reason and the fix when namespaces cannot be created."""
    tools = _tools()
    if uid is None and running_as_root():
        uid = UID_BASE
    with tempfile.TemporaryDirectory(prefix="interp-sandbox-probe-") as tmp:
        work = Path(tmp)
        if uid is not None:
            os.chown(work, uid, uid)
        argv = bwrap_argv(["/bin/true"], workdir=work, uid=uid, tools=tools,
                          readonly=python_paths())
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise SandboxUnavailableError(
            "bubblewrap is installed but cannot build the grading sandbox here: "
            f"{(proc.stderr or proc.stdout).strip() or f'exit status {proc.returncode}'}. "
            "Unprivileged user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone"
            " / user.max_user_namespaces), or a container forbids them; run grading as root on "
            f"the host, or, only if you accept running students' code unprotected, opt out "
            f"with {OPT_OUT_ENV}=off."
        )


def refuse_unless_available(argv: Sequence[str] = (), course_root: Path | None = None) -> None:
    """Stop ``nbgrader autograde`` with a clear message when the sandbox is unavailable and the
    instructor has not opted out.

    Called from ``nbgrader_config.py``; other commands (release, feedback, export) run no student
    code and are never stopped. (``nbgrader validate`` is what students run on their own
    machines, on their own code; it is not sandboxed.)
    """
    if opted_out() or "autograde" not in argv[1:]:
        return
    try:
        probe(course_root)
    except SandboxUnavailableError as err:
        sys.stderr.write(f"[grading sandbox] refusing to run students' code: {err}\n")
        raise SystemExit(2)


class SandboxKernelManager(AsyncKernelManager):
    """A Jupyter kernel manager whose kernels run in the grading sandbox.

    The kernel command is wrapped with :func:`bwrap_argv`; the connection file and ZeroMQ's
    ``ipc`` sockets live in a private folder that only this kernel sees; interrupts go straight to
    the kernel process (bubblewrap does not forward signals). The sandbox dies with its launcher.
    """

    enabled = Bool(True, config=True,
                   help=f"Run kernels in the sandbox. False (or {OPT_OUT_ENV}=off) opts out.")
    course_root = Unicode("", config=True,
                          help="Course root whose packages the kernel may import.")
    course_packages = List(Unicode(), list(COURSE_PACKAGES), config=True,
                           help="Folders of the course root visible (read-only) in the sandbox.")
    extra_readonly = List(Unicode(), [], config=True,
                          help="More folders shown read-only inside (e.g. a dataset).")
    kernel_module = Unicode("autograder.kernel", config=True,
                            help="Module run instead of ipykernel_launcher inside the sandbox.")
    memory_bytes = Integer(Limits.memory_bytes, config=True, help="RLIMIT_AS of the kernel.")
    max_processes = Integer(Limits.processes, config=True,
                            help="RLIMIT_NPROC: processes and threads of the kernel's uid.")
    cpu_seconds = Integer(Limits.cpu_seconds, config=True, help="RLIMIT_CPU per process.")
    file_bytes = Integer(Limits.file_bytes, config=True, help="RLIMIT_FSIZE.")

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._private_dir: Path | None = None
        self._workdir: Path | None = None
        self._inner_pid: int | None = None
        self._uid: int | None = None

    @property
    def sandboxed(self) -> bool:
        return self.enabled and not opted_out()

    @property
    def limits(self) -> Limits:
        return Limits(memory_bytes=self.memory_bytes, processes=self.max_processes,
                      cpu_seconds=self.cpu_seconds, file_bytes=self.file_bytes)

    def _root(self) -> Path:
        return Path(self.course_root or os.environ.get("INTERP_COURSE_ROOT")
                    or Path(__file__).resolve().parent.parent)

    async def _async_pre_start_kernel(self, **kw: Any):
        if self.sandboxed and self._private_dir is None:
            # The sandbox has no network (not even loopback to the grader): ZeroMQ's ipc
            # transport, with the connection file and sockets in a folder only this kernel sees.
            self.transport = "ipc"
            self._private_dir = Path(tempfile.mkdtemp(prefix="interp-kernel-"))
            self.connection_file = str(self._private_dir / f"kernel-{uuid.uuid4()}.json")
            self.ip = str(self._private_dir / "ipc")
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.sandboxed and self.kernel_module and "ipykernel_launcher" in cmd:
            module_file = self._root().joinpath(*self.kernel_module.split(".")).with_suffix(".py")
            if module_file.exists():
                cmd[cmd.index("ipykernel_launcher")] = self.kernel_module
                # -P: the working directory holds the student's files; a submitted
                # `autograder/` folder must not replace the real kernel module.
                cmd.insert(1, "-P")
            else:
                self.log.warning("%s is missing: the grading kernel starts without its "
                                 "integrity seal", module_file)
        return cmd

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        if not self.sandboxed:
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        root = self._root()
        workdir = Path(kw.get("cwd") or os.getcwd()).resolve()
        self._workdir = workdir
        uid = None
        if running_as_root():
            # Distinct uids: one kernel's fork bomb cannot use up another kernel's process budget.
            uid = UID_BASE + (os.getpid() * 7919 + id(self)) % UID_SPAN
            for path in (workdir, self._private_dir, Path(self.connection_file)):
                os.chown(path, uid, uid)
            self._uid = uid
        readonly = _existing([*python_paths(), *(root / p for p in self.course_packages),
                              torch_cache_dir() / "hub", *self.extra_readonly])
        env = sandbox_env(kw.get("env") or dict(os.environ), root)
        read_fd, write_fd = os.pipe()
        try:
            kw["pass_fds"] = tuple(kw.get("pass_fds", ())) + (write_fd,)
            argv = bwrap_argv(kernel_cmd, workdir=workdir, writable=[self._private_dir],
                              readonly=readonly, env=env, limits=self.limits, uid=uid,
                              info_fd=write_fd)
            self.log.debug("Sandboxed kernel: %s", argv)
            await super()._async_launch_kernel(argv, **kw)
        finally:
            os.close(write_fd)
        with os.fdopen(read_fd, "rb") as info:
            data = info.read()
        try:
            self._inner_pid = int(json.loads(data)["child-pid"])
        except (ValueError, KeyError):
            self._inner_pid = None

    def _kernel_pid(self) -> int | None:
        """The kernel's pid: the child of bubblewrap's init (pid 1 of the sandbox, whose death
        takes every sandboxed process with it)."""
        if not self._inner_pid:
            return None
        try:
            children = Path(f"/proc/{self._inner_pid}/task/{self._inner_pid}/children").read_text()
        except OSError:
            return None
        pids = children.split()
        return int(pids[0]) if pids else None

    async def _async_signal_kernel(self, signum: int) -> None:
        # bubblewrap does not forward signals: SIGINT (interrupt) goes straight to the kernel.
        pid = self._kernel_pid() if self.sandboxed and signum != signal.SIGKILL else None
        if pid:
            try:
                os.kill(pid, signum)
                return
            except ProcessLookupError:
                pass
        await super()._async_signal_kernel(signum)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if restart:
            return
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)
            self._private_dir = None
        if self._uid is not None and self._workdir is not None and self._workdir.exists():
            # Give the student's folder back to the grader; files the kernel wrote keep their uid.
            os.chown(self._workdir, os.geteuid(), os.getegid())
            self._uid = None
