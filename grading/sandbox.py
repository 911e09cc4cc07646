"""Sandboxed grading kernels, built from Debian's bubblewrap (``bwrap``).

nbgrader runs each student's notebook in a Jupyter kernel with the instructor's own permissions, on
the machine that holds every submission and the gradebook. Here every grading kernel instead runs
inside a bubblewrap sandbox, and nothing it writes ever reaches the grader's disk:

- **File system**: read-only, and only what a kernel needs: the system (``/usr``, ``/etc``), the
  Python installation with its ``site-packages`` reduced to the packages students get
  (:mod:`grading.kernel_env`: no captum, no grad-cam, no nbgrader), the student toolbox
  ``interpkit/`` and the kernel's witness ``witness/``, and the torch weights cache. Not there at
  all: ``solutions/``, ``autograder/``, ``source/``, ``submitted/``, ``autograded/``, other
  students, ``feedback/``, the gradebook, the instructor's home.
- **Writable: private, size-limited memory only.** The working directory ``/sandbox/work`` (the
  assignment's files are copied in when the kernel starts, from a read-only staging copy at
  ``/sandbox/inputs``), ``/tmp``, ``/dev/shm`` and the socket folder ``/sandbox/kernel`` are
  tmpfs mounts of bounded size (:class:`Limits`) that vanish with the sandbox. The grader never
  opens, copies, chmods or follows anything a kernel wrote: links, FIFOs, device nodes and
  multi-GB files have nowhere to go. Outputs reach the grader only as Jupyter messages.
- **No network**: a new, empty network namespace. The kernel's ZeroMQ ``ipc`` sockets live in
  its own tmpfs; the grader connects to them through ``/proc/<pid>/root`` (the sandbox's root as
  seen from outside), so no host folder is writable by the kernel.
- **Limits** (:class:`Limits`): address space, processes/threads, CPU time, file size, open files,
  and the size of every tmpfs (tmpfs is memory outside the address-space limit).
- **Unprivileged**: when grading runs as root, the kernel runs as a numeric uid of its own (no
  capabilities, ``no_new_privs``), so the process limit counts only that kernel's processes.
  Without root, bubblewrap maps the grader's uid into a new user namespace instead.

nbgrader reaches this through its normal configuration: ``nbgrader_config.py`` replaces the
``Execute`` preprocessor with :class:`grading.execute.TrustedExecute`, whose kernel manager is
:class:`SandboxKernelManager`. Where ``bwrap`` is missing or cannot create namespaces, grading
refuses with :class:`SandboxUnavailableError` unless the instructor opts out explicitly with
``INTERP_GRADING_SANDBOX=off`` (environment) or ``c.SandboxKernelManager.enabled = False``; the
scores still come from the grader then, but the student's code runs with the grader's rights.
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
COURSE_PACKAGES = ("interpkit", "witness")

#: Where the sandbox's own folders appear inside it.
SANDBOX = Path("/sandbox")
WORKDIR = SANDBOX / "work"        # the kernel's working directory (tmpfs)
INPUTS = SANDBOX / "inputs"       # the assignment's files, read-only, copied into WORKDIR
SOCKETS = SANDBOX / "kernel"      # ZeroMQ ipc sockets (tmpfs)
CONF = SANDBOX / "conf"           # the kernel's connection file, read-only

#: Environment variables passed into the sandbox (everything else, e.g. tokens or credentials in
#: the instructor's environment, is dropped). Prefixes end with ``_``.
ENV_PASSTHROUGH = (
    "INTERPKIT_", "NBGRADER_", "OMP_", "MKL_", "OPENBLAS_", "TORCH_", "PYTHONHASHSEED",
    "MPLBACKEND", "LANG", "LC_", "TZ", "JPY_", "PYDEVD_",
)

#: Where sandbox uids start when grading runs as root (far above any real account).
UID_BASE = 200_000
UID_SPAN = 100_000

_MiB = 1024 ** 2
_GiB = 1024 ** 3


class SandboxUnavailableError(RuntimeError):
    """The sandbox cannot be built on this machine; grading must not run unprotected."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one grading kernel.

    ``memory_bytes`` bounds the address space (``RLIMIT_AS``): importing torch alone maps about
    3.3 GB, so the default leaves the notebook about 8 GB. ``processes`` bounds processes *and*
    threads of the sandbox's uid (``RLIMIT_NPROC``). ``cpu_seconds`` is per process (SIGXCPU, then
    SIGKILL). ``file_bytes`` bounds any single file written. The ``*_bytes`` of the tmpfs mounts
    bound what the kernel can keep in files (memory the address-space limit does not count).
    """

    memory_bytes: int = 12 * _GiB
    processes: int = 256
    cpu_seconds: int = 3600
    file_bytes: int = 256 * _MiB
    open_files: int = 1024
    work_bytes: int = 256 * _MiB
    tmp_bytes: int = 512 * _MiB
    shm_bytes: int = 64 * _MiB

    def prlimit_args(self) -> list[str]:
        """Arguments for util-linux ``prlimit`` (soft = hard; CPU gets 10 s between them)."""
        return [
            f"--as={self.memory_bytes}",
            f"--nproc={self.processes}",
            f"--cpu={self.cpu_seconds}:{self.cpu_seconds + 10}",
            f"--fsize={self.file_bytes}",
            f"--nofile={self.open_files}",
            "--core=0",
        ]


#: What is copied from the assignment's folder into a kernel's staging folder (regular files
#: only, no notebooks, no dot files, no timestamp).
STAGE_MAX_FILES = 200
STAGE_MAX_BYTES = 64 * _MiB


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
    """Folders holding this Python installation (its prefixes, resolved: the virtual
    environment's ``bin/python`` is a symlink into the base installation). Their
    ``site-packages`` folders are filtered by :func:`python_view`."""
    return _existing([sys.base_prefix, sys.prefix, sys.exec_prefix])


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


def _tmpfs(path: Path, size: int, perms: str = "1777") -> list[str]:
    return ["--perms", perms, "--size", str(int(size)), "--tmpfs", str(path)]


def python_view(site_dirs: Sequence[Path], visible: Sequence[Path]) -> list[str]:
    """bwrap arguments replacing each of ``site_dirs`` (already shown read-only) by an empty,
    read-only folder holding only the ``visible`` entries that live in it."""
    args = []
    for folder in site_dirs:
        args += ["--tmpfs", str(folder)]
        for entry in visible:
            if entry.parent == folder:
                args += ["--ro-bind", str(entry), str(entry)]
        args += ["--remount-ro", str(folder)]
    return args


def bwrap_argv(command: Sequence[str], *, readonly: Sequence[Path] = (),
               binds: Sequence[tuple[Path, Path]] = (), python: Sequence[str] = (),
               env: dict[str, str] | None = None, limits: Limits = Limits(), uid: int | None = None,
               info_fd: int | None = None, tools: dict[str, str] | None = None) -> list[str]:
    """The full command line that runs ``command`` sandboxed, in :data:`WORKDIR`.

    ``readonly`` folders appear at their own absolute paths (their parents as empty 0755
    folders); ``binds`` are ``(host path, path inside)`` read-only binds elsewhere; ``python``:
    arguments from :func:`python_view` (applied after the binds). The working directory, ``/tmp``,
    ``/dev/shm`` and :data:`SOCKETS` are size-limited tmpfs mounts. ``env`` is the complete
    environment inside (nothing else is inherited). ``uid``: run as this numeric uid (needs root;
    entered through ``setpriv``); ``None``: bubblewrap's user namespace with the caller's uid.
    ``info_fd``: a file descriptor on which bubblewrap writes ``{"child-pid": ...}`` (the
    sandbox's init, whose child is ``command``).
    """
    tools = tools or _tools()
    clash = [p for p in readonly if p == SANDBOX or SANDBOX in p.parents]
    if clash:
        raise SandboxUnavailableError(f"{clash[0]} lies under {SANDBOX}, the sandbox's own folder")
    args = [tools["bwrap"]]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    args += _root_layout()
    args += ["--dev", "/dev", "--proc", "/proc"]
    args += _tmpfs(Path("/tmp"), limits.tmp_bytes) + _tmpfs(Path("/dev/shm"), limits.shm_bytes)
    paths = [Path(p) for p in readonly]
    made: set[Path] = set()
    for path in paths:
        for parent in _parents(path):
            if parent not in made and not any(parent == b or b in parent.parents for b in paths if b != path):
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
    for path in paths:
        args += ["--ro-bind", str(path), str(path)]
    args += list(python)
    args += _tmpfs(WORKDIR, limits.work_bytes) + _tmpfs(SOCKETS, 1 * _MiB)
    for host, inside in binds:
        args += ["--ro-bind", str(host), str(inside)]
    if uid is None:
        # The caller's own files would look like its own inside: hide the usual secrets in /etc.
        for secret in ("/etc/shadow", "/etc/gshadow"):
            if os.path.exists(secret):
                args += ["--ro-bind", "/dev/null", secret]
    args += [
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup-try", "--die-with-parent", "--chdir", str(WORKDIR),
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


def kernel_python_view() -> list[str]:
    """:func:`python_view` of this interpreter for a grading kernel (see :mod:`grading.kernel_env`:
    the installation's own requirements decide, wherever the course being graded lives)."""
    from grading import kernel_env

    roots = python_paths()
    sites = [d for d in kernel_env.site_packages_dirs() if any(r == d or r in d.parents for r in roots)]
    return python_view(sites, kernel_env.visible_entries())


def sandbox_env(environ: dict[str, str], course_root: Path) -> dict[str, str]:
    """The kernel's environment: the passthrough variables, a private home, the course's kernel
    packages on the import path, the torch cache where the sandbox shows it."""
    env = {k: v for k, v in environ.items() if k.startswith(ENV_PASSTHROUGH)}
    env.update({
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "PYTHONPATH": str(course_root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TORCH_HOME": str(torch_cache_dir()),
        "WITNESS_INPUTS": str(INPUTS),
        OPT_OUT_ENV: "inside",
    })
    return env


def read_child_pid(fd: int) -> int | None:
    """The ``child-pid`` bubblewrap writes on its info fd. Read until the JSON object is complete:
    in a user namespace the sandbox keeps the fd open, so end-of-file never comes."""
    data = b""
    with os.fdopen(fd, "rb", buffering=0) as info:
        while len(data) < 4096:
            chunk = info.read(256)
            if not chunk:
                break
            data += chunk
            try:
                return int(json.loads(data)["child-pid"])
            except (ValueError, KeyError):
                continue
    return None


def stage_inputs(source: Path, dest: Path) -> list[str]:
    """Copy the assignment's own files from ``source`` (nbgrader's ``autograded/<s>/<a>/``:
    the submission's extra files and the source's data files) into ``dest``, the kernel's
    read-only staging folder: regular files only, never through links, no notebooks, dot files
    or ``timestamp.txt``, within :data:`STAGE_MAX_FILES` and :data:`STAGE_MAX_BYTES`. Returns
    what was left out, in words."""
    skipped, count, total = [], 0, 0
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(part.startswith(".") for part in rel.parts) or rel.suffix == ".ipynb" or rel.name == "timestamp.txt":
            continue
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            skipped.append(f"{rel} (not a regular file)")
            continue
        if path.is_dir():
            continue
        size = path.stat().st_size
        if count + 1 > STAGE_MAX_FILES or total + size > STAGE_MAX_BYTES:
            skipped.append(f"{rel} (over the {STAGE_MAX_FILES} files / {STAGE_MAX_BYTES // _MiB} MB budget)")
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as src, open(target, "xb") as out:
            shutil.copyfileobj(src, out)
        count, total = count + 1, total + size
    return skipped


def probe(course_root: Path | None = None, uid: int | None = None) -> None:
    """Build a throw-away sandbox and run ``true`` in it; raise :class:`SandboxUnavailableError`
    with bubblewrap's own reason and the fix when namespaces cannot be created."""
    tools = _tools()
    if uid is None and running_as_root():
        uid = UID_BASE
    argv = bwrap_argv(["/bin/true"], uid=uid, tools=tools, readonly=python_paths())
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
    """A Jupyter kernel manager whose kernels run :mod:`witness.kernel` in the grading sandbox.

    The kernel command is wrapped with :func:`bwrap_argv`; the kernel binds its ZeroMQ ``ipc``
    sockets in its own tmpfs, which the grader reaches through ``/proc/<pid>/root``; interrupts go
    straight to the kernel process (bubblewrap does not forward signals). The sandbox dies with
    its launcher. Opted out, the same kernel module runs unsandboxed (scores still come from the
    grader).
    """

    enabled = Bool(True, config=True,
                   help=f"Run kernels in the sandbox. False (or {OPT_OUT_ENV}=off) opts out.")
    course_root = Unicode("", config=True,
                          help="Course root whose packages the kernel may import.")
    course_packages = List(Unicode(), list(COURSE_PACKAGES), config=True,
                           help="Folders of the course root visible (read-only) in the sandbox.")
    extra_readonly = List(Unicode(), [], config=True,
                          help="More folders shown read-only inside (e.g. a dataset).")
    kernel_module = Unicode("witness.kernel", config=True,
                            help="Module run instead of ipykernel_launcher.")
    memory_bytes = Integer(Limits.memory_bytes, config=True, help="RLIMIT_AS of the kernel.")
    max_processes = Integer(Limits.processes, config=True,
                            help="RLIMIT_NPROC: processes and threads of the kernel's uid.")
    cpu_seconds = Integer(Limits.cpu_seconds, config=True, help="RLIMIT_CPU per process.")
    file_bytes = Integer(Limits.file_bytes, config=True, help="RLIMIT_FSIZE.")
    work_bytes = Integer(Limits.work_bytes, config=True, help="Size of the working directory's tmpfs.")
    tmp_bytes = Integer(Limits.tmp_bytes, config=True, help="Size of /tmp (tmpfs).")
    shm_bytes = Integer(Limits.shm_bytes, config=True, help="Size of /dev/shm (tmpfs).")

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._private_dir: Path | None = None
        self._inner_pid: int | None = None
        self.staging_notes: list[str] = []

    @property
    def sandboxed(self) -> bool:
        return self.enabled and not opted_out()

    @property
    def limits(self) -> Limits:
        return Limits(memory_bytes=self.memory_bytes, processes=self.max_processes,
                      cpu_seconds=self.cpu_seconds, file_bytes=self.file_bytes,
                      work_bytes=self.work_bytes, tmp_bytes=self.tmp_bytes, shm_bytes=self.shm_bytes)

    def _root(self) -> Path:
        return Path(self.course_root or os.environ.get("INTERP_COURSE_ROOT")
                    or Path(__file__).resolve().parent.parent)

    async def _async_pre_start_kernel(self, **kw: Any):
        if self.sandboxed and self._private_dir is None:
            self.transport = "ipc"
            self._private_dir = Path(tempfile.mkdtemp(prefix="interp-kernel-"))
            os.chmod(self._private_dir, 0o711)
            self.connection_file = str(self._private_dir / f"kernel-{uuid.uuid4()}.json")
            self.ip = str(self._private_dir / "ipc")  # where ports are chosen; moved at launch
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        module_file = self._root().joinpath(*self.kernel_module.split(".")).with_suffix(".py")
        if self.kernel_module and "ipykernel_launcher" in cmd and module_file.exists():
            cmd[cmd.index("ipykernel_launcher")] = self.kernel_module
            # -P: the working directory holds the student's files; none may replace the kernel.
            cmd.insert(1, "-P")
        elif self.kernel_module:
            self.log.warning("%s is missing: the grading kernel starts without the witness, and no "
                             "test can be graded", module_file)
        if self.sandboxed:
            cmd = [str(CONF / "kernel.json") if c == self.connection_file else c for c in cmd]
        return cmd

    def _write_inside_connection(self, uid: int | None) -> None:
        """The kernel's copy of the connection file: its sockets live in :data:`SOCKETS`."""
        info = json.loads(Path(self.connection_file).read_text())
        info["ip"] = str(SOCKETS / "ipc")
        path = self._private_dir / "kernel.json"
        path.write_text(json.dumps(info))
        if uid is not None:
            os.chown(path, uid, uid)
        os.chmod(path, 0o400 if uid is not None else 0o600)

    def _stage(self, workdir: Path) -> Path:
        inputs = self._private_dir / "inputs"
        if inputs.exists():
            shutil.rmtree(inputs)
        inputs.mkdir()
        os.chmod(inputs, 0o755)
        self.staging_notes = stage_inputs(workdir, inputs) if workdir.is_dir() else []
        for path in inputs.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        return inputs

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        if not self.sandboxed:
            env = dict(kw.get("env") or os.environ)
            paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
            if str(self._root()) not in paths:  # the witness must be importable (the kernel runs -P)
                env["PYTHONPATH"] = os.pathsep.join([str(self._root()), *paths])
            kw["env"] = env
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        root = self._root()
        uid = None
        if running_as_root():
            # Distinct uids: one kernel's fork bomb cannot use up another kernel's process budget.
            uid = UID_BASE + (os.getpid() * 7919 + id(self)) % UID_SPAN
        self._write_inside_connection(uid)
        inputs = self._stage(Path(kw.get("cwd") or os.getcwd()).resolve())
        readonly = _existing([*python_paths(), *(root / p for p in self.course_packages),
                              torch_cache_dir() / "hub", *self.extra_readonly])
        env = sandbox_env(kw.get("env") or dict(os.environ), root)
        read_fd, write_fd = os.pipe()
        try:
            kw["pass_fds"] = tuple(kw.get("pass_fds", ())) + (write_fd,)
            kw["cwd"] = "/"
            argv = bwrap_argv(kernel_cmd, readonly=readonly, binds=[(self._private_dir, CONF), (inputs, INPUTS)],
                              python=kernel_python_view(), env=env, limits=self.limits, uid=uid,
                              info_fd=write_fd)
            self.log.debug("Sandboxed kernel: %s", argv)
            await super()._async_launch_kernel(argv, **kw)
        finally:
            os.close(write_fd)
        self._inner_pid = read_child_pid(read_fd)
        if self._inner_pid:
            # The grader's side of the sockets: the sandbox's tmpfs, seen from outside.
            self.ip = f"/proc/{self._inner_pid}/root{SOCKETS / 'ipc'}"

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

    def alive_now(self) -> bool:
        """Whether the kernel's process (the sandbox launcher) still runs (synchronous)."""
        process = getattr(self.provisioner, "process", None)
        return process is not None and process.poll() is None

    def interrupt_now(self) -> None:
        """SIGINT to the kernel itself, now (synchronous)."""
        pid = self._kernel_pid() if self.sandboxed else None
        if pid is None:
            process = getattr(self.provisioner, "process", None)
            pid = process.pid if process is not None else None
        if pid:
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass

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
        if not restart and self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)
            self._private_dir = None
