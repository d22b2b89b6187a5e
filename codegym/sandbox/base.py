"""The sandbox interface and the pool machinery every backend shares.

A :class:`PooledSandbox` keeps ``size`` warm workers (containers, or local processes), each
running ``runner.py``. One dispatcher thread owns them all: it hands jobs to idle workers,
reads their results with ``selectors`` (no thread per worker, no blocking write that could
deadlock against a full pipe), judges results on the host, and replaces a worker that died,
hung or reports itself tainted, retrying its job once. Callers get
``concurrent.futures.Future`` objects, so a trainer can overlap generation and execution.

When a replacement cannot be started (the Docker daemon is restarting, say), the pool runs on
with the workers it has and retries with back-off. With no worker left, jobs wait in the queue
while it retries, for at most ``outage_timeout_s`` seconds; only then does it give up, failing
the waiting jobs with ``infra_error`` and refusing new ones.
"""

from __future__ import annotations

import abc
import itertools
import json
import logging
import os
import secrets
import selectors
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from codegym.errors import UsageError
from codegym.sandbox import runner
from codegym.sandbox.judge import infra_error, judge
from codegym.sandbox.types import ExecutionResult, Job, Limits, TestCase

log = logging.getLogger(__name__)
#: Seconds a runner may take beyond the sum of its tests' wall limits before it counts as hung.
_HANG_SLACK_S = 10.0
#: Jobs sent ahead to each worker: while the runner works on one, the next is already in its
#: stdin, so it never idles waiting for the host to judge and send.
_PIPELINE = 2
#: Seconds a new worker may take to say it is ready.
_START_TIMEOUT_S = 30.0
#: Back-off between attempts to start missing workers: the first wait, doubled after each
#: failure up to the second (a daemon that answers again is noticed within that time).
_RESPAWN_FIRST_S = 0.5
_RESPAWN_MAX_S = 5.0
#: How long a pool with no worker keeps retrying before it gives up. A Docker daemon restart
#: takes seconds; minutes are worth waiting for in a training run of hours.
DEFAULT_OUTAGE_TIMEOUT_S = 300.0


class SandboxError(RuntimeError):
    """The sandbox itself cannot work (no Docker daemon, no image, a worker that won't start).

    Never raised for anything the candidate program does: that is always a verdict.
    """


class SandboxSetupError(SandboxError):
    """The sandbox cannot start because of how this machine is set up: no Docker daemon, no
    image, no root for a build. The message says what to do; the ``codegym`` command prints it
    as one line (exit status 2) instead of a traceback."""


class Sandbox(abc.ABC):
    """Runs untrusted programs against tests.

    Use it as a context manager or call :meth:`close`. A pool left open lives until the
    process exits, and is closed then (its dispatcher thread keeps it alive until one or the
    other).
    """

    #: Backend name (``"docker"``, ``"process"``).
    name: str = ""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    @abc.abstractmethod
    def submit(self, job: Job) -> Future[ExecutionResult]:
        """Queue ``job``; the future's result is its :class:`ExecutionResult`."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """How many executions run in parallel."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop every worker and release its resources. Safe to call more than once."""

    def run(
        self,
        program: str,
        tests: Iterable[TestCase | dict[str, Any]] = (),
        entry_point: str | None = None,
        limits: Limits | None = None,
        trace_lines: bool = False,
        stop_on_failure: bool = False,
    ) -> ExecutionResult:
        """Run one program on its tests and wait for the result (see :class:`Job`)."""
        cases = tuple(TestCase.from_dict(t) for t in tests)
        job = Job(program, cases, entry_point, limits, trace_lines, stop_on_failure)
        return self.submit(job).result()

    def run_batch(self, jobs: Sequence[Job]) -> list[ExecutionResult]:
        """Run ``jobs`` in parallel over the pool; results come back in input order."""
        futures = [self.submit(job) for job in jobs]
        return [f.result() for f in futures]

    def __enter__(self) -> Sandbox:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Sandbox:
        # A sandbox is a shared resource (a pool of containers), never duplicated: gymnasium
        # deep-copies env kwargs (e.g. in check_env), and every copy must use this same pool.
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled into another process (async vector envs, Ray), a sandbox becomes a new pool
        # of the same kind and configuration there: containers cannot travel between processes.
        return (_remake, (self.name, self.config()))

    def config(self) -> dict[str, Any]:
        """Keyword arguments that recreate a sandbox like this one with :func:`make_sandbox`."""
        return {"limits": self.limits}

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _close_if_alive(ref: weakref.ReferenceType[Sandbox]) -> None:
    """Exit-time close (holding only a weak reference, so unused sandboxes are still freed)."""
    sandbox = ref()
    if sandbox is not None:
        sandbox.close()


def _remake(name: str, config: dict[str, Any]) -> Sandbox:
    """Unpickling a sandbox: a new one of the same kind and configuration."""
    return make_sandbox(name, **config)


# ----------------------------------------------------------------------------- workers
class FrameDecoder:
    """Splits the runner's byte stream into JSON messages (4-byte length, then the body)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buf += data
        out = []
        while len(self._buf) >= 4:
            (size,) = runner.FRAME_HEADER.unpack_from(self._buf)
            if len(self._buf) < 4 + size:
                break
            body = bytes(self._buf[4 : 4 + size])
            del self._buf[: 4 + size]
            out.append(json.loads(body))
        return out


class Worker(abc.ABC):
    """One warm runner (a container or a local process), as the dispatcher sees it."""

    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.outbox = bytearray()
        self.jobs: deque[_Pending] = deque()  # sent, result not yet received
        self.ready = False
        self.started_at = time.monotonic()

    @abc.abstractmethod
    def read_fd(self) -> int:
        """File descriptor to select on for the runner's output."""

    @abc.abstractmethod
    def write_fd(self) -> int:
        """File descriptor to write job frames to."""

    @abc.abstractmethod
    def read(self) -> list[dict[str, Any]] | None:
        """Read what is available; messages decoded, or ``None`` at end of stream."""

    @abc.abstractmethod
    def write(self, data: bytes) -> int:
        """Write without blocking; the number of bytes taken."""

    @abc.abstractmethod
    def kill(self) -> None:
        """Stop the runner and release everything it holds (may return before it is gone)."""


@dataclass
class _Pending:
    job: Job
    future: Future[ExecutionResult]
    nonce: str = field(default_factory=lambda: secrets.token_hex(16))
    attempts: int = 0
    budget: float = 0.0
    deadline: float = 0.0
    id: int = 0


class PooledSandbox(Sandbox):
    """A pool of warm workers behind one dispatcher thread (see the module docstring).

    Args:
        size: Number of workers (default: the number of CPUs).
        limits: Default per-test limits.
        outage_timeout_s: While no worker is alive and none can be started, how long jobs
            wait (and the pool retries) before they fail with ``infra_error``; 0 gives up at
            the first failed start. Also a public attribute, which can be changed later.
    """

    def __init__(
        self,
        size: int | None = None,
        limits: Limits | None = None,
        outage_timeout_s: float = DEFAULT_OUTAGE_TIMEOUT_S,
    ) -> None:
        super().__init__(limits)
        if not outage_timeout_s >= 0:
            raise UsageError(f"outage_timeout_s must be >= 0 seconds, got {outage_timeout_s!r}")
        self._size = max(1, size or os.cpu_count() or 1)
        self.outage_timeout_s = float(outage_timeout_s)
        self._ids = itertools.count(1)
        self._init_pool_state()

    def _init_pool_state(self) -> None:
        self._pid = os.getpid()
        self._queue: deque[_Pending] = deque()
        self._lock = threading.Lock()
        self._closed = False
        self._broken: BaseException | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._workers: list[Worker] = []
        self._thread: threading.Thread | None = None
        self._missing = 0  # workers that died and could not be replaced yet
        self._respawn_at = 0.0  # monotonic time of the next attempt to start them
        self._respawn_delay = _RESPAWN_FIRST_S
        self._outage_since: float | None = None  # since when no worker is alive

    def _inherited(self) -> bool:
        """True in a process that got this sandbox through ``fork`` (e.g. an async vector
        env's worker): the pool, its dispatcher thread and its lock belong to the parent."""
        return self._pid != os.getpid()

    def _restart_after_fork(self) -> None:
        """Give a forked process a pool of its own, leaving the parent's untouched."""
        log.info("%s sandbox used in a forked process: starting a pool there", self.name)
        self._init_pool_state()
        self._after_fork()
        self._start()

    def _after_fork(self) -> None:
        """Backend hook, run in a forked process before its pool starts (new clients...)."""

    # -- backend hooks
    @abc.abstractmethod
    def _spawn(self) -> Worker:
        """Start one worker (it will send ``ready`` when its runner is up)."""

    def _start(self) -> None:
        """Start the pool: call at the end of a backend's ``__init__``."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self._size) as ex:
            futures = [ex.submit(self._spawn) for _ in range(self._size)]
            errors = []
            for f in futures:
                try:
                    self._workers.append(f.result())
                except Exception as e:
                    errors.append(e)
        if errors:
            for w in self._workers:
                w.kill()
            self._workers.clear()
            error = errors[0]
            raise SandboxError(f"could not start the {self.name} sandbox: {error}") from error
        self._wait_ready(self._workers)
        # Closed at exit even without a ``with`` block, also in multiprocessing children,
        # which leave through os._exit but run multiprocessing's finalizers first.
        from multiprocessing import util

        util.Finalize(self, _close_if_alive, args=(weakref.ref(self),), exitpriority=10)
        self._thread = threading.Thread(
            target=self._dispatch, name=f"codegym-{self.name}", daemon=True
        )
        self._thread.start()

    def _wait_ready(self, workers: list[Worker]) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        sel = selectors.DefaultSelector()
        for w in workers:
            sel.register(w.read_fd(), selectors.EVENT_READ, w)
        try:
            while not all(w.ready for w in workers):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SandboxError(
                        f"{self.name} sandbox workers did not start within {_START_TIMEOUT_S:.0f} s"
                    )
                for key, _ in sel.select(remaining):
                    w = key.data
                    msgs = w.read()
                    if msgs is None:
                        sel.unregister(key.fileobj)
                        raise SandboxError(
                            f"a {self.name} sandbox worker exited while starting"
                            f"{self._worker_log(w)}"
                        )
                    if any(m.get("op") == "ready" for m in msgs):
                        w.ready = True
        except BaseException:
            for w in workers:
                w.kill()
            raise
        finally:
            sel.close()

    def _worker_log(self, worker: Worker) -> str:
        """Extra text for error messages about a worker (its log), if the backend has one."""
        return ""

    # -- public API
    @property
    def size(self) -> int:
        return self._size

    def config(self) -> dict[str, Any]:
        return {"size": self._size, "limits": self.limits}

    def submit(self, job: Job) -> Future[ExecutionResult]:
        if not isinstance(job, Job):
            raise TypeError(f"submit() takes a Job, got {type(job).__name__}")
        if self._inherited():
            self._restart_after_fork()
        future: Future[ExecutionResult] = Future()
        pending = _Pending(job.with_limits(self.limits), future)
        with self._lock:
            if self._closed:
                raise SandboxError(f"the {self.name} sandbox is closed")
            if self._broken is not None:
                raise SandboxError(f"the {self.name} sandbox failed: {self._broken}")
            self._queue.append(pending)
        self._wake()
        return future

    def close(self) -> None:
        if self._inherited():  # the parent's pool: not ours to stop
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        # In parallel (removing a container takes a few hundred ms), with plain threads:
        # close() also runs at interpreter exit, when executors refuse new work.
        killers = [threading.Thread(target=w.kill, daemon=True) for w in self._workers]
        for t in killers:
            t.start()
        for t in killers:
            t.join(timeout=60)
        in_flight = [p for w in self._workers for p in w.jobs]
        self._workers.clear()
        for p in in_flight + list(self._queue):
            if not p.future.done():
                p.future.set_exception(SandboxError(f"the {self.name} sandbox was closed"))
        self._queue.clear()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    # -- the dispatcher thread
    def _dispatch(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            while True:
                with self._lock:
                    if self._closed:
                        break
                self._respawn()
                self._assign()
                self._sync_selector(sel)
                timeout = self._next_deadline()
                for key, events in sel.select(timeout):
                    if key.data is None:
                        try:
                            os.read(self._wake_r, 4096)
                        except BlockingIOError:
                            pass
                        continue
                    worker = key.data
                    if events & selectors.EVENT_WRITE and worker in self._workers:
                        self._flush(worker)
                    if events & selectors.EVENT_READ and worker in self._workers:
                        self._receive(worker)
                self._check_hung()
        except BaseException as e:  # the dispatcher must never die silently
            log.exception("codegym sandbox dispatcher failed")
            with self._lock:
                self._broken = e
            self._fail_everything(e)
        finally:
            sel.close()

    def _sync_selector(self, sel: selectors.BaseSelector) -> None:
        """Register each live worker's fds: read always, write while it has bytes to send."""
        want: dict[int, tuple[int, Worker]] = {}
        for w in self._workers:
            want[w.read_fd()] = (selectors.EVENT_READ, w)
            if w.outbox:
                events = want.get(w.write_fd(), (0, w))[0] | selectors.EVENT_WRITE
                want[w.write_fd()] = (events, w)
        for fd, key in list(sel.get_map().items()):
            if key.data is None:  # the wake-up pipe
                continue
            if fd not in want or key.data is not want[fd][1]:
                # Gone, or a replaced worker's fd number reused by its successor.
                sel.unregister(fd)
            elif key.events != want[fd][0]:
                sel.modify(fd, *want[fd])
        registered = sel.get_map()
        for fd, (events, w) in want.items():
            if fd not in registered:
                sel.register(fd, events, w)

    def _assign(self) -> None:
        """Give queued jobs to workers: first one to each idle worker, then fill pipelines."""
        for depth in range(1, _PIPELINE + 1):
            for w in list(self._workers):
                if not w.ready or len(w.jobs) >= depth or w not in self._workers:
                    continue
                with self._lock:
                    if not self._queue:
                        return
                    pending = self._queue.popleft()
                if pending.attempts or pending.future.set_running_or_notify_cancel():
                    self._send(w, pending)

    def _send(self, worker: Worker, pending: _Pending) -> None:
        job = pending.job
        limits = job.limits or self.limits
        pending.id = next(self._ids)
        pending.attempts += 1
        n = max(1, len(job.tests))
        pending.budget = n * (limits.wall_time_s + 0.5) + _HANG_SLACK_S
        if not worker.jobs:
            pending.deadline = time.monotonic() + pending.budget
        message = {
            "op": "run",
            "id": pending.id,
            "program": job.program,
            "tests": [t.sandbox_payload() for t in job.tests],
            "entry_point": job.entry_point,
            "limits": limits.to_dict(),
            "trace": job.trace_lines,
            "stop_on_failure": job.stop_on_failure,
            "max_timeouts": job.max_timeouts,
            "nonce": pending.nonce,
        }
        worker.jobs.append(pending)
        worker.outbox += runner.encode_frame(message)
        self._flush(worker)

    def _flush(self, worker: Worker) -> None:
        try:
            while worker.outbox:
                n = worker.write(bytes(worker.outbox[: 1 << 20]))
                if n <= 0:
                    break
                del worker.outbox[:n]
        except BlockingIOError:
            pass
        except OSError as e:
            self._replace(worker, f"writing to the runner failed: {e}")

    def _receive(self, worker: Worker) -> None:
        try:
            messages = worker.read()
        except (OSError, ValueError) as e:
            messages = None
            log.warning("reading from a %s worker failed: %s", self.name, e)
        if messages is None:
            self._replace(worker, f"the runner exited{self._worker_log(worker)}")
            return
        for msg in messages:
            op = msg.get("op")
            if op == "ready":
                worker.ready = True
            elif op == "result":
                self._complete(worker, msg)

    def _complete(self, worker: Worker, msg: dict[str, Any]) -> None:
        if not worker.jobs or worker.jobs[0].id != msg.get("id"):
            self._replace(worker, "the runner answered out of turn")
            return
        pending = worker.jobs.popleft()
        if worker.jobs:  # the next job starts now: its clock starts now too
            worker.jobs[0].deadline = time.monotonic() + worker.jobs[0].budget
        try:
            result = judge(pending.job.tests, msg, pending.nonce, self.name)
        except (ValueError, TypeError, KeyError) as e:
            result = infra_error(pending.job.tests, f"malformed runner result: {e}", self.name)
        if not pending.future.cancelled():
            pending.future.set_result(result)
        if msg.get("tainted"):
            # The jobs sent behind this one never ran in a clean container (the runner stops
            # after a failed clean-up): they are retried on the replacement, not failed.
            self._replace(worker, "the runner could not clean up after a program")

    def _check_hung(self) -> None:
        now = time.monotonic()
        for w in list(self._workers):
            if w.jobs and w.jobs[0].deadline < now:
                self._replace(w, "the runner stopped answering")
            elif not w.ready and now - w.started_at > _START_TIMEOUT_S:
                self._replace(w, "the runner did not start")

    def _next_deadline(self) -> float:
        deadlines = [w.jobs[0].deadline for w in self._workers if w.jobs]
        deadlines += [w.started_at + _START_TIMEOUT_S for w in self._workers if not w.ready]
        if self._missing:
            deadlines.append(self._respawn_at)
        if not deadlines:
            return 1.0
        return max(0.0, min(deadlines) - time.monotonic())

    def _replace(self, worker: Worker, reason: str, retry: bool = True) -> None:
        """Kill ``worker``, start a fresh one, and retry its jobs once."""
        if worker not in self._workers:  # already replaced (e.g. a write and a read failed)
            return
        log.warning("replacing a %s sandbox worker: %s", self.name, reason)
        self._workers.remove(worker)
        worker.kill()
        for pending in worker.jobs:
            if retry and pending.attempts < 2:
                with self._lock:
                    self._queue.appendleft(pending)
            elif not pending.future.done():
                pending.future.set_result(
                    infra_error(pending.job.tests, f"{reason} (after a retry)", self.name)
                )
        worker.jobs.clear()
        self._missing += 1
        self._respawn()

    def _respawn(self) -> None:
        """Start the workers the pool lacks, unless the back-off says not yet."""
        now = time.monotonic()
        if not self._missing or now < self._respawn_at:
            return
        while self._missing:
            try:
                fresh = self._spawn()
            except Exception as e:
                self._respawn_failed(e, now)
                return
            self._workers.append(fresh)
            self._missing -= 1
        if self._outage_since is not None:
            log.warning(
                "%s sandbox workers start again after %.1f s without any",
                self.name,
                now - self._outage_since,
            )
        self._respawn_at, self._respawn_delay, self._outage_since = 0.0, _RESPAWN_FIRST_S, None

    def _respawn_failed(self, error: Exception, now: float) -> None:
        """Schedule the next attempt; with no worker alive for too long, give up."""
        self._respawn_at = now + self._respawn_delay
        self._respawn_delay = min(2 * self._respawn_delay, _RESPAWN_MAX_S)
        if self._workers:  # the pool runs on, smaller for now
            log.warning("could not start a replacement %s worker: %s", self.name, error)
            return
        if self._outage_since is None:
            self._outage_since = now
            log.warning(
                "no %s sandbox worker is alive and none can be started (%s); jobs wait while "
                "the pool retries for up to %.0f s",
                self.name,
                error,
                self.outage_timeout_s,
            )
        give_up_at = self._outage_since + self.outage_timeout_s
        if now < give_up_at:
            self._respawn_at = min(self._respawn_at, give_up_at)
            return
        broken = SandboxError(
            f"no {self.name} sandbox worker is left: none could be started for "
            f"{now - self._outage_since:.0f} s ({error}); `codegym sandbox doctor` says what "
            "is wrong"
        )
        with self._lock:
            self._broken = broken  # later submits raise instead of waiting forever
        self._fail_everything(broken)

    def _fail_everything(self, error: BaseException) -> None:
        with self._lock:
            pending = list(self._queue)
            self._queue.clear()
        for w in self._workers:
            pending += list(w.jobs)
            w.jobs.clear()
        for p in pending:
            if not p.future.done():
                p.future.set_result(infra_error(p.job.tests, str(error), self.name))


# ----------------------------------------------------------------------------- factory
#: Options only the docker backend takes, dropped when ``auto`` falls back to ``process``.
_DOCKER_ONLY_OPTIONS = ("image", "outage_timeout_s")


def make_sandbox(backend: str | Mapping[str, Any] | Sandbox = "auto", **kwargs: Any) -> Sandbox:
    """Create a sandbox by backend name.

    Args:
        backend: ``"docker"`` (isolated; needs a daemon and the image from
            ``codegym sandbox build``), ``"process"`` (local subprocesses: NO isolation, for
            trusted code only), ``"ray"`` (docker pools on the nodes of a Ray cluster; see
            :class:`~codegym.sandbox.ray.RaySandbox` for ``address``, ``actors`` and
            ``per_actor``), ``"auto"`` (docker when a daemon answers, else process with a
            warning), an existing :class:`Sandbox`, returned as is, or a spec: a mapping with
            the backend name under ``"backend"`` and its keyword arguments, e.g.
            ``{"backend": "docker", "image": image_tag(["python3-scipy"])}`` (what the envs'
            ``sandbox=`` argument can carry).
        **kwargs: Passed to the backend (``size``, ``limits``, and backend-specific options
            such as the docker backend's ``image`` and ``outage_timeout_s``).

    Raises:
        SandboxError: the backend cannot start (the message says what to do).
        UsageError: unknown backend name.
    """
    if isinstance(backend, Sandbox):
        return backend
    if isinstance(backend, Mapping):
        spec = dict(backend)
        return make_sandbox(spec.pop("backend", "auto"), **{**spec, **kwargs})
    if backend == "docker":
        from codegym.sandbox.docker import DockerSandbox

        return DockerSandbox(**kwargs)
    if backend == "process":
        from codegym.sandbox.process import ProcessSandbox

        return ProcessSandbox(**kwargs)
    if backend == "ray":
        from codegym.sandbox.ray import RaySandbox

        return RaySandbox(**kwargs)
    if backend == "auto":
        from codegym.sandbox.docker import IMAGE, DockerSandbox, docker_available

        ok, why = docker_available(kwargs.get("image", IMAGE))
        if ok:
            return DockerSandbox(**kwargs)
        dropped = sorted(k for k in kwargs if k in _DOCKER_ONLY_OPTIONS)
        log.warning(
            "Docker is not available (%s); falling back to the process backend%s",
            why,
            f" (which ignores {', '.join(dropped)})" if dropped else "",
        )
        from codegym.sandbox.process import ProcessSandbox

        return ProcessSandbox(**{k: v for k, v in kwargs.items() if k not in dropped})
    raise UsageError(
        f"unknown sandbox backend {backend!r}; choose 'docker', 'process', 'ray' or 'auto'"
    )
