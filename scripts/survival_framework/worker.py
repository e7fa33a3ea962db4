"""The warm job worker: a run's imports paid once, not once per job.

On a small table a job's work takes milliseconds while a fresh Python process spends
0.2-1.4 s starting and importing numpy, pyarrow, pandas, scikit-learn, XGBoost... (the
demo's 30 fit jobs: 2.4 s of fitting, predicting and scoring in 23 s of job time). So a
local run starts one *worker* process (``onstart``, :func:`start_worker`) that imports
those libraries once, in the background while the first jobs run, and every rule script
hands its job to it (:func:`hand_over`, the script's first statement): the worker forks,
and the fork, which already holds the imports, runs the script exactly as the fresh process
would have (the same file, with Snakemake's preamble, ``sys.argv``, working directory,
environment, standard streams and thread limits), while the script's own process waits
and exits with the fork's status. Each job is still one Snakemake job, with its own log,
benchmark record, retries and outputs; only its process is a fork instead of a fresh
interpreter. Results are the same bytes (tested).

What makes it safe:

* The job's process and the fork live and die together: a signal to the job process
  (Snakemake cancelling a job, ``Ctrl-C``) is forwarded to the fork; if the job process
  dies (``SIGKILL``), the worker kills the fork's process group at once; if the worker
  dies, its forks get ``SIGKILL`` (``PR_SET_PDEATHSIG``). The worker itself exits with
  the Snakemake process that started it.
* Only the same code is served: a job is refused, and runs in its own process as usual,
  when its interpreter, its ``survival_framework`` package directory or any of that
  package's files (size and modification time) differ from the worker's, or when it comes
  from another user (``SO_PEERCRED``). Without a worker (``execution.job_worker: fresh``,
  a cluster executor, a worker that failed to start) :func:`hand_over` returns at once.
* The worker imports with ``OMP_NUM_THREADS=1`` and friends and never computes, so no
  BLAS or OpenMP thread pool exists at a fork; a job with more threads gets them from
  :mod:`threadpoolctl`, as its environment asks (Snakemake sets ``OMP_NUM_THREADS`` to the
  job's ``threads``).

What differs from a fresh process: Snakemake's ``benchmark:`` record measures the job's
own process, which only waits, so its memory and CPU columns are not the job's; the job's
log therefore ends with the fork's peak RSS (which counts the worker's imports) and CPU
seconds, from ``wait4``. ``auto`` uses the worker only on small inputs, where start-up
dominates (:func:`survival_framework.engine.select_job_worker`); large ones keep fresh
processes and exact per-job records.

Linux only (abstract Unix sockets, ``pidfd_open``, ``prctl``); elsewhere jobs run fresh.
Standard library only at import: every job imports this module first.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path

__all__ = [
    "ENV_VAR",
    "PRELOAD",
    "hand_over",
    "package_digest",
    "start_worker",
    "stop_worker",
]

ENV_VAR = "SURVIVAL_WORKFLOW_WORKER"
"""Environment variable naming the run's worker (an abstract Unix socket); set by
:func:`start_worker` in the Snakemake process, inherited by its local jobs only."""

PRELOAD = (
    # every script: Snakemake's preamble, Arrow, pandas (pyarrow imports it on first use)
    "snakemake.iocontainers",
    "snakemake.io",
    "snakemake.logging",
    "numpy",
    "pyarrow",
    "pyarrow.parquet",
    "pyarrow.dataset",
    "pandas",
    "pyarrow.pandas_compat",
    "pandas.io.formats.csvs",
    # validate_data, split_data, then the fit jobs, in the order the DAG needs them
    "survival_framework.job",
    "survival_framework.schema",
    "survival_framework.etl",
    "sklearn.model_selection",
    "survival_framework.cv",
    "survival_framework.matrix",
    "survival_framework.models",
    "survival_framework.weibull",
    "scipy.linalg",
    "sksurv.linear_model",
    "sksurv.util",
    "sksurv.ensemble",
    "sklearn.ensemble._forest",
    "joblib",
    "xgboost",
    "survival_framework.aggregate",
    # the PH tests, the final model, the report
    "survival_framework.ph",
    "lifelines",
    "survival_framework.final",
    "survival_framework.report",
    "sksurv.nonparametric",
    "matplotlib.pyplot",
    "matplotlib.backends.backend_agg",
)
"""What the worker imports, first things first; a module missing here is imported by the
job that needs it (a test checks that real jobs import nothing heavy themselves)."""

_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
_MAX_MESSAGE = 1 << 20
_READY = b"R"
_IN_WORKER = False  # True in a fork running a job: hand_over() then returns at once
_WORKER = None  # the worker this (Snakemake) process started: a subprocess.Popen


# --------------------------------------------------------------------------- the job side
def package_digest(package_dir: str | os.PathLike) -> str:
    """Names, sizes and modification times of the package's ``.py`` files, as one string.

    Equal in the worker and in a job process exactly when neither has seen an edit since
    the worker started (cheap: one ``stat`` per file, no reading).
    """
    parts = []
    for entry in sorted(os.scandir(package_dir), key=lambda e: e.name):
        if entry.name.endswith(".py"):
            st = entry.stat()
            parts.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts)


def _package_dir() -> str:
    return str(Path(__file__).resolve().parent)


def _receive(sock: socket.socket) -> dict | None:
    try:
        data = sock.recv(_MAX_MESSAGE)
    except OSError:
        return None
    return json.loads(data) if data else None


def hand_over(namespace: dict) -> None:
    """Run the calling rule script in this run's warm worker, if it has one.

    The first statement of a rule script, ``hand_over(globals())``. With a worker, this
    process sends it Snakemake's script file (``__real_file__``: the preamble and the
    script), its arguments, working directory, environment and standard streams, waits,
    and exits with the status of the fork that ran the script; it never returns. It returns
    at once (and the script runs here, as usual) without a worker, when the worker refuses
    the job (other code or interpreter: one line on stderr says so), inside the worker's
    fork itself, and outside a Snakemake ``script:`` job.

    Parameters
    ----------
    namespace : dict
        The script's ``globals()``.
    """
    address = os.environ.get(ENV_VAR)
    script = namespace.get("__real_file__")
    if _IN_WORKER or not address or not script or not sys.platform.startswith("linux"):
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect("\0" + address)
    except OSError:
        sock.close()
        return  # the worker has gone (or never started): run here
    request = {
        "script": os.path.abspath(script),
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "package": _package_dir(),
        "digest": package_digest(_package_dir()),
    }
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            continue
        fds.append(fd)
    request["fds"] = fds
    try:
        socket.send_fds(sock, [json.dumps(request).encode()], fds)
    except OSError as exc:
        print(f"survival-workflow: job worker unreachable ({exc}); running here", file=sys.stderr)
        sock.close()
        return
    reply = _receive(sock)
    if reply is None or "refused" in reply:
        why = "it stopped" if reply is None else reply["refused"]
        print(f"survival-workflow: job worker refused this job ({why}); running here",
              file=sys.stderr)  # fmt: skip
        sock.close()
        return
    child = int(reply["pid"])

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)
    result: dict = {}
    while True:
        message = _receive(sock)
        if message is None:  # the worker died with the job running (its fork is killed)
            print(f"survival-workflow: job worker stopped while running this job (process "
                  f"{child})", file=sys.stderr)  # fmt: skip
            sys.exit(1)
        result.update(message)
        if "returncode" in message:
            break
    sock.close()
    _note_in_log(namespace, child, result)
    code = int(result["returncode"])
    if code < 0:  # the fork died of a signal: so does this process
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


def _note_in_log(namespace: dict, child: int, result: dict) -> None:
    """The fork's peak memory and CPU time at the end of the job's log (Snakemake's
    benchmark record measures this waiting process, not the fork)."""
    smk = namespace.get("snakemake")
    logs = list(getattr(smk, "log", []) or [])
    if not logs:
        return
    from .jobusage import format_usage_note

    nan = float("nan")
    line = format_usage_note(
        child,
        result.get("maxrss_mb", nan),
        result.get("cpu_s", nan),
        result.get("own_modules", 0),
        result.get("own_libraries", []),
    )
    if "own_module_names" in result:
        line += f" (modules: {', '.join(result['own_module_names'])})"
    try:
        with open(logs[0], "a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError:
        pass


# --------------------------------------------------------------------------- the Snakemake side
def start_worker(log_path: str | os.PathLike, preload: tuple[str, ...] = PRELOAD) -> str | None:
    """Start this Snakemake process's job worker and point its jobs at it.

    Called by ``onstart`` in the Snakemake process. Waits only until the worker listens
    (its imports continue in the background), then sets :data:`ENV_VAR` in this process's
    environment, which the local jobs started from now on inherit.

    Parameters
    ----------
    log_path : path-like
        The worker's own log (what it imported, and when; the jobs it ran).
    preload : tuple of str
        Modules to import, first things first.

    Returns
    -------
    str or None
        The worker's address, or None if it could not start (jobs then run fresh; the
        reason is in its log).
    """
    global _WORKER
    stop_worker()  # one worker per process: a run_pipeline() after an interrupted one
    if not sys.platform.startswith("linux"):
        return None
    address = f"survival-workflow-{os.getpid()}-{os.urandom(4).hex()}"
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    # no thread pool at import: a job gets the threads it asks for (threadpoolctl)
    env.update(dict.fromkeys(_THREAD_VARS, "1"), MPLBACKEND="Agg")
    read_end, write_end = os.pipe()
    import subprocess

    code = "import sys; from survival_framework.worker import serve; serve(sys.argv[1:])"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            # -P: the working directory is not put on sys.path (a job's script folder is)
            [
                sys.executable,
                "-P",
                "-c",
                code,
                address,
                str(os.getpid()),
                str(write_end),
                *preload,
            ],  # fmt: skip
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=(write_end,),
            cwd=os.getcwd(),
        )
    os.close(write_end)
    import select

    ready, _, _ = select.select([read_end], [], [], 30.0)
    answer = os.read(read_end, 1) if ready else b""
    os.close(read_end)
    if answer != _READY:
        proc.kill()
        proc.wait()
        return None
    _WORKER = proc
    os.environ[ENV_VAR] = address
    return address


def stop_worker() -> None:
    """Stop this process's worker (``onsuccess``/``onerror``); jobs started later run fresh."""
    global _WORKER
    os.environ.pop(ENV_VAR, None)
    proc, _WORKER = _WORKER, None
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except Exception:  # noqa: BLE001 - a worker that does not stop is killed
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- the worker
class _Stop(Exception):
    pass


def _stop(signum: int, frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


def _set_pdeathsig(signum: int) -> None:
    """Receive ``signum`` when the parent process dies (Linux ``prctl``)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)


def _log(message: str) -> None:
    import time

    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} job worker {os.getpid()}: {message}", flush=True)


def _new_libraries(before: set[str], after: set[str]) -> list[str]:
    """Top-level packages in ``after`` of which ``before`` had nothing."""
    had = {name.split(".")[0] for name in before}
    return sorted({name.split(".")[0] for name in after} - had)


def serve(argv: list[str]) -> None:
    """Entry point of the worker process: ``address parent_pid ready_fd module...``."""
    address, parent, ready_fd, preload = argv[0], int(argv[1]), int(argv[2]), argv[3:]
    _set_pdeathsig(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        return
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _stop)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind("\0" + address)
    listener.listen(64)
    os.write(ready_fd, _READY)
    os.close(ready_fd)
    _log(f"listening as {address} for Snakemake process {parent}")
    try:
        _Worker(listener, parent, list(preload)).run()
    except _Stop as stop:
        _log(f"stopped ({stop})")


class _Worker:
    """The worker's loop: one thread, no work of its own; imports while idle."""

    def __init__(self, listener: socket.socket, parent: int, preload: list[str]) -> None:
        import selectors

        self.listener = listener
        self.parent = parent
        self.preload = preload
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, ("accept", None))
        self.children: dict[int, tuple[int, socket.socket]] = {}  # pid -> (pidfd, conn)
        self.package = _package_dir()
        self.digest = package_digest(self.package)
        self.served = 0

    def run(self) -> None:
        import importlib
        import time

        start = time.perf_counter()
        try:
            while True:
                events = self.selector.select(timeout=0 if self.preload else 1.0)
                if os.getppid() != self.parent:
                    raise _Stop("Snakemake process gone")
                if not events and self.preload:
                    name = self.preload.pop(0)
                    t0 = time.perf_counter()
                    try:
                        importlib.import_module(name)
                    except Exception as exc:  # noqa: BLE001 - the job imports it itself
                        _log(f"could not import {name}: {type(exc).__name__}: {exc}")
                    else:
                        _log(f"imported {name} in {time.perf_counter() - t0:.2f} s")
                    if not self.preload:
                        _log(f"all imports done after {time.perf_counter() - start:.2f} s")
                    continue
                for key, _ in events:
                    kind, data = key.data
                    if kind == "accept":
                        self._accept()
                    elif kind == "exit":
                        self._reap(data)
                    else:
                        self._client_event(data, key.fileobj)
        finally:
            for pid in list(self.children):
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
            _log(f"served {self.served} job(s)")

    def _refusal(self, request: dict, conn: socket.socket) -> str | None:
        import struct

        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        if uid != os.getuid():
            return f"user {uid} is not the worker's user"
        for key, ours in (
            ("executable", sys.executable),
            ("prefix", sys.prefix),
            ("package", self.package),
        ):
            if request.get(key) != ours:
                return f"{key} {request.get(key)!r} is not the worker's {ours!r}"
        if request.get("digest") != self.digest or package_digest(self.package) != self.digest:
            return f"the package in {self.package} changed since the worker started"
        return None

    def _accept(self) -> None:
        import selectors

        conn, _ = self.listener.accept()
        try:
            data, fds, _, _ = socket.recv_fds(conn, _MAX_MESSAGE, 3)
            request = json.loads(data)
        except (OSError, ValueError) as exc:
            _log(f"bad request: {exc}")
            conn.close()
            return
        refusal = self._refusal(request, conn)
        if refusal is not None:
            _log(f"refused {request.get('script')}: {refusal}")
            for fd in fds:
                os.close(fd)
            with contextlib.suppress(OSError):
                conn.send(json.dumps({"refused": refusal}).encode())
            conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the job's process
            code = 1
            try:
                code = self._child(request, fds, conn)
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        self.served += 1
        pidfd = os.pidfd_open(pid)
        self.children[pid] = (pidfd, conn)
        self.selector.register(pidfd, selectors.EVENT_READ, ("exit", pid))
        self.selector.register(conn, selectors.EVENT_READ, ("client", pid))
        _log(f"job {pid}: {request['script']}")
        try:
            conn.send(json.dumps({"pid": pid}).encode())
        except OSError:  # the job process is gone already (a signal): so is its job
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)

    def _client_event(self, pid: int, conn: socket.socket) -> None:
        """The job's own process sent nothing but went away: kill what it was waiting for."""
        try:
            data = conn.recv(_MAX_MESSAGE)
        except OSError:
            data = b""
        if data:
            return
        self.selector.unregister(conn)
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        _log(f"job {pid}: its job process went away; killed")

    def _reap(self, pid: int) -> None:
        pidfd, conn = self.children.pop(pid)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        _, status, usage = os.wait4(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        result = {
            "returncode": code,
            "maxrss_mb": usage.ru_maxrss / 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime,
        }
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn)
        with contextlib.suppress(OSError):
            conn.send(json.dumps(result).encode())
        conn.close()
        _log(f"job {pid}: exit {code}, peak RSS {result['maxrss_mb']:.0f} MB")

    def _child(self, request: dict, fds: list[int], conn: socket.socket) -> int:
        """In the fork: become the job's process and run its script; the exit status."""
        global _IN_WORKER
        os.setpgid(0, 0)
        _set_pdeathsig(signal.SIGKILL)
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self.selector.close()
        self.listener.close()
        for pidfd, other in self.children.values():
            os.close(pidfd)
            other.close()
        for target, fd in zip(request["fds"], fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        import tempfile

        tempfile.tempdir = None  # TMPDIR is the job's
        threads = os.environ.get("OMP_NUM_THREADS", "1")
        if threads.isdigit() and int(threads) != 1:  # the worker's pools have one thread
            from threadpoolctl import threadpool_limits

            threadpool_limits(int(threads))
        _IN_WORKER = True
        before = set(sys.modules)
        import runpy

        try:
            runpy.run_path(request["script"], run_name="__main__")
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except KeyboardInterrupt:
            import traceback

            traceback.print_exc()
            code = -signal.SIGINT
        except BaseException:  # noqa: BLE001 - what the interpreter would print, then status 1
            sys.excepthook(*sys.exc_info())
            code = 1
        try:
            import atexit

            atexit._run_exitfuncs()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
        with contextlib.suppress(OSError):
            new = set(sys.modules) - before
            own = {"own_modules": len(new), "own_libraries": _new_libraries(before, new)}
            if os.environ.get("SURVIVAL_WORKFLOW_WORKER_DEBUG"):
                own["own_module_names"] = sorted(new)
            conn.send(json.dumps(own).encode())
        if code < 0:  # die of the signal, as the interpreter does on KeyboardInterrupt
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        return code


def _exit_code(value: object) -> int:
    """The status ``sys.exit(value)`` gives (a message is printed to stderr, status 1)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1
