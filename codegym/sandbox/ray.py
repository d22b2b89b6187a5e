"""The ``ray`` backend: docker sandbox pools on the nodes of a Ray cluster.

``make_sandbox("ray", address=..., actors=N, per_actor=M)`` starts N Ray actors, spread over
the cluster's nodes (the ``SPREAD`` scheduling strategy). Each actor owns a
:class:`~codegym.sandbox.docker.DockerSandbox` of M warm containers on its node, so the
isolation is exactly the docker backend's; Ray only carries jobs and results. This is how
verl (``RewardLoopWorker``), OpenRLHF and SkyRL fan reward computation out over a cluster.

Dispatch, all from one thread in the driver:

- Jobs wait in the driver's queue; each actor holds at most ``16 * M`` unfinished jobs, so a
  batch of any size never floods the object store and a dead actor loses little work.
- Jobs go out in one ``submit`` call per batch of free room, and results come back through a
  long-poll ``collect`` call that returns what finished since the last one. One Ray call per
  job used five times the docker backend's host CPU per check; one call per fixed chunk would
  hold finished results back behind a slow job.
- An actor that dies (its process, or its node), raises, or stops answering is killed and
  replaced by a new one, and its unfinished jobs run again on another actor. A job whose
  second actor fails too gets ``infra_error``. Ray's own actor restarts and task retries stay
  off (``max_restarts=0``, ``max_task_retries=0``): they would retry on the same actor, and a
  restarted actor's jobs are lost anyway.

Connecting: ``address=None`` uses the Ray connection this process already has, else
``RAY_ADDRESS``, else starts a private Ray instance on this machine bound to loopback only
(no dashboard, no usage reporting), shut down again with the last sandbox that uses it;
``"local"`` always starts one.
``"auto"`` joins the cluster ``ray start`` made on this machine; ``"ray://host:port"`` uses Ray
Client; ``"host:port"`` joins a cluster by its GCS address.

Processes: pickled into another process, the sandbox becomes a new one there, connected to the
same cluster (see :meth:`Sandbox.__reduce__`). Ray's connection does not survive ``fork``, so
in a forked process (an async vector env's worker) the sandbox runs through a relay: a fresh
interpreter that connects to the cluster and takes the jobs over a pipe.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import itertools
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from multiprocessing import util
from multiprocessing.connection import Connection
from typing import Any

from codegym.errors import UsageError
from codegym.sandbox.base import Sandbox, SandboxError, SandboxSetupError
from codegym.sandbox.judge import infra_error
from codegym.sandbox.types import ExecutionResult, Job, Limits

log = logging.getLogger(__name__)

#: What to run when Ray is missing.
INSTALL_HINT = "pip install 'codegym[ray]' (or: pip install 'ray>=2.9')"
#: Ray namespace of the actors, so `codegym sandbox doctor --ray` can find them.
NAMESPACE = "codegym"
ACTOR_PREFIX = "codegym-sandbox-"
#: Unfinished jobs an actor may hold per container. A Ray call costs about a millisecond of
#: CPU at each end, as much as judging a result, so jobs and results travel in batches:
#: ``collect`` answers when the actor is down to :data:`_LOW_WATER_PER_CONTAINER` unfinished
#: jobs per container (each container busy, with more queued, while the answer and the next
#: batch cross the network), or :data:`_LINGER_S` after the first result. Larger batches cost
#: less CPU (measured: 8 per container cost about 0.5 ms more per job than 16, and 32 little
#: less than 16) but commit more jobs to one actor, which an idle actor cannot take over.
_IN_FLIGHT_PER_CONTAINER = 16
_LOW_WATER_PER_CONTAINER = 4
_LINGER_S = 0.5
#: Actors a job may be sent to before it fails with ``infra_error``: the first, and one other.
_MAX_ATTEMPTS = 2
#: Failed starts in a row after which an actor slot is given up (a node without Docker or the
#: image would otherwise be retried forever).
_MAX_START_FAILURES = 3
#: Seconds an actor may take to start: a Ray worker process, a Docker client, M containers,
#: on a node that may be busy.
_READY_TIMEOUT_S = 180.0
#: Seconds beyond its jobs' own time budgets after which an actor counts as hung. A backstop
#: only: Ray reports a dead process at once and a dead node within its health-check period.
_HANG_SLACK_S = 60.0
#: Object store of a private local instance: jobs and results are small (Ray keeps objects
#: under 100 KiB out of it altogether), and its default is 30% of the machine's memory.
_LOCAL_OBJECT_STORE_BYTES = 256 << 20


# ----------------------------------------------------------------------------- connecting
def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        SandboxSetupError: Ray is not installed (the message says how to install it).
    """
    try:
        import ray
    except ImportError as e:
        raise SandboxSetupError(
            f"the ray sandbox needs Ray, which is not installed: {INSTALL_HINT}"
        ) from e
    return ray


_state = threading.Lock()
#: The process that connected to Ray through codegym: a forked child of it has Ray's
#: module state but not its connection.
_connected_pid: int | None = None
#: The address of that connection, for relays in forked children.
_connected_address: str | None = None
#: Open sandboxes using the private instance codegym started in this process (None: it did not).
_private_users: int | None = None


#: Environment of a private instance's processes. Clusters off (as Ray has them on macOS and
#: Windows): the node address is 127.0.0.1 and every server binds to it; otherwise Ray turns
#: a loopback ``_node_ip_address`` into the machine's routable address and listens on every
#: interface. No usage reporting. No task events: they are for the dashboard, which a
#: private instance lacks, and cost CPU on every call.
_PRIVATE_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_task_events_report_interval_ms": "0",
}


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """Make a Ray instance started (or joined) inside this block bind to 127.0.0.1 only.

    The environment (:data:`_PRIVATE_ENV`) reaches the processes Ray starts; the constant
    covers this process, where Ray read the variable at import.
    """
    from ray._private import ray_constants

    saved_env = {k: os.environ.get(k) for k in _PRIVATE_ENV}
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ.update(_PRIVATE_ENV)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start_local_ray(num_cpus: int | None = None) -> str:
    """Start a private Ray instance on this machine, bound to loopback only; its address.

    No dashboard, no usage reporting, a small object store. The caller owns it
    (``ray.shutdown()``); sandboxes that find it use it and leave it running.

    Raises:
        SandboxSetupError: Ray is missing, or the instance did not bind to loopback only.
    """
    ray = import_ray()
    with _loopback_only():
        context = ray.init(
            address="local",
            _node_ip_address="127.0.0.1",
            include_dashboard=False,
            num_cpus=num_cpus or os.cpu_count() or 1,
            object_store_memory=_LOCAL_OBJECT_STORE_BYTES,
            logging_level=logging.WARNING,
        )
    info = context.address_info
    if info.get("node_ip_address") != "127.0.0.1":
        ray.shutdown()
        raise SandboxSetupError(
            f"Ray {ray.__version__} started on {info.get('node_ip_address')}, not on loopback "
            "only; start a cluster yourself (`ray start --head`) and pass its address"
        )
    _note_connected(info["gcs_address"])
    return str(info["gcs_address"])


def _note_connected(address: str) -> None:
    global _connected_pid, _connected_address
    _connected_pid, _connected_address = os.getpid(), address


def _is_loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def _forked_from_driver() -> bool:
    """True in a process forked from one that connected to Ray through codegym."""
    return _connected_pid is not None and _connected_pid != os.getpid()


def _current_address(ray: Any, fallback: str | None) -> str:
    """An address another process can join this process's cluster by."""
    if fallback and fallback.startswith("ray://"):
        return fallback
    try:
        return str(ray.get_runtime_context().gcs_address)
    except Exception:  # Ray Client and old versions do not say
        return fallback or "auto"


def connect(address: str | None) -> str:
    """Connect this process to Ray (see the module docstring); the cluster's address.

    Raises:
        SandboxSetupError: Ray is missing, or the cluster cannot be reached.
    """
    global _private_users
    ray = import_ray()
    with _state:
        if ray.is_initialized():
            resolved = _current_address(ray, address)
            if _connected_pid != os.getpid():
                _note_connected(resolved)
            if _private_users is not None:
                _private_users += 1
            return resolved
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address in (None, "local"):
            resolved = start_local_ray()
            _private_users = 1
            return resolved
        try:
            if _is_loopback(address):
                # A private instance (ours, from another process): this driver must take the
                # node's loopback address too, or it looks for a node at the routable one.
                with _loopback_only():
                    ray.init(
                        address=address,
                        _node_ip_address="127.0.0.1",
                        logging_level=logging.WARNING,
                    )
            else:
                ray.init(address=address, logging_level=logging.WARNING)
        except Exception as e:
            raise SandboxSetupError(f"cannot join the Ray cluster at {address!r}: {e}") from e
        resolved = _current_address(ray, address)
        _note_connected(resolved)
        return resolved


def _release() -> None:
    """A sandbox closed: shut the private instance down with the last one using it."""
    global _private_users, _connected_pid, _connected_address
    with _state:
        if _private_users is None or _connected_pid != os.getpid():
            return
        _private_users -= 1
        if _private_users > 0:
            return
        _private_users = None
        _connected_pid = _connected_address = None
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def _why(error: BaseException) -> str:
    """One line saying why a Ray call failed: the actor's own exception when it raised one."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        error = cause
    lines = [line for line in str(error).splitlines() if line.strip()]
    # A dead actor's message ends with the exception its constructor raised, if it did.
    last = lines[-1].strip() if lines else ""
    return f"{type(error).__name__}: {last}" if last else type(error).__name__


# ----------------------------------------------------------------------------- the actor
class PoolActor:
    """A Ray actor (on whatever node Ray placed it): a docker pool there, fed by the driver.

    Jobs arrive in batches through :meth:`submit`; :meth:`collect` returns finished ones, as
    ``(job id, result)`` pairs (a ``str`` in place of the result when the pool itself failed
    the job).
    """

    def __init__(self, pool: dict[str, Any]) -> None:
        from codegym.sandbox.docker import DockerSandbox, remove_stale_containers

        # An actor killed before it could close its pool leaves its containers running
        # (their stdin stays open); its replacement, often on the same node, removes them.
        with contextlib.suppress(Exception):
            remove_stale_containers()
        self._sandbox = DockerSandbox(**pool)
        # Filled by the pool's dispatcher thread, emptied by collect on the event loop.
        self._lock = threading.Lock()
        self._done: list[tuple[int, ExecutionResult | str]] = []
        self._unfinished = 0
        self._low_water = 0
        self._finished = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def describe(self) -> dict[str, Any]:
        """Where this actor runs and what it has: node, process, pool size, image, engine."""
        import ray

        from codegym.sandbox.docker import docker_client

        client = docker_client(timeout=10)
        try:
            engine = client.version().get("Version", "?")
        finally:
            client.close()
        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "node_ip": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
            "size": self._sandbox.size,
            "image": self._sandbox.image,
            "docker": engine,
        }

    async def submit(self, jobs: bytes) -> None:
        """Queue ``jobs`` (pickled ``(job id, Job)`` pairs) in the pool; their results come
        back through :meth:`collect`."""
        self._loop = asyncio.get_running_loop()
        for job_id, job in pickle.loads(jobs):
            with self._lock:
                self._unfinished += 1
            future = self._sandbox.submit(job)
            future.add_done_callback(functools.partial(self._finish, job_id))

    def _finish(self, job_id: int, future: Future[ExecutionResult]) -> None:
        error = future.exception()
        with self._lock:
            self._done.append((job_id, future.result() if error is None else str(error)))
            self._unfinished -= 1
            # Wake collect only when it may answer: not once per job (each wake-up of the
            # event loop costs CPU).
            wake = len(self._done) == 1 or self._unfinished <= self._low_water
        if wake and self._loop is not None:
            self._loop.call_soon_threadsafe(self._finished.set)

    async def collect(self, low_water: int = 0, linger_s: float = 0.0) -> bytes:
        """The jobs finished since the last call, pickled, once at most ``low_water`` are
        left unfinished, or ``linger_s`` after the first of them finished (see
        :data:`_IN_FLIGHT_PER_CONTAINER` for why results travel in batches)."""
        loop = asyncio.get_running_loop()
        self._low_water = low_water
        deadline: float | None = None
        while True:
            with self._lock:
                if self._done and (
                    self._unfinished <= low_water
                    or (deadline is not None and loop.time() >= deadline)
                ):
                    done, self._done = self._done, []
                    return pickle.dumps(done, protocol=pickle.HIGHEST_PROTOCOL)
                if self._done and deadline is None:
                    deadline = loop.time() + linger_s
                self._finished.clear()
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._finished.wait(), timeout)

    def close(self) -> None:
        """Remove this actor's containers."""
        self._sandbox.close()


_remote_actor_class: Any = None


def _actor_class(ray: Any) -> Any:
    global _remote_actor_class
    if _remote_actor_class is None:
        _remote_actor_class = ray.remote(PoolActor)
    return _remote_actor_class


# ----------------------------------------------------------------------------- the driver
@dataclass(eq=False)
class _Pending:
    job: Job
    future: Future[ExecutionResult]
    budget: float  # seconds the job may take in a pool, a retry there included
    attempts: int = 0
    deadline: float = 0.0


@dataclass(eq=False)
class _Actor:
    slot: int
    handle: Any
    name: str
    started_at: float
    ready: bool = False
    size: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    jobs: dict[int, _Pending] = field(default_factory=dict)  # sent, result not yet back
    collecting: bool = False


def _job_budget(job: Job) -> float:
    limits = job.limits or Limits()
    return 2 * (max(1, len(job.tests)) * (limits.wall_time_s + 0.5) + 10.0)


def _validate(address: Any, actors: Any, per_actor: Any, actor_cpus: Any) -> None:
    if address is not None and (
        not isinstance(address, str)
        or not (address in ("auto", "local") or address.startswith("ray://") or ":" in address)
    ):
        raise UsageError(
            f"ray sandbox address {address!r} is not a Ray address: give None (this process's "
            "connection, RAY_ADDRESS or a private local instance), 'auto' (the cluster `ray "
            "start` made here), 'ray://host:port' (Ray Client) or 'host:port' (a GCS address)"
        )
    for name, value in (("actors", actors), ("per_actor", per_actor)):
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise UsageError(f"ray sandbox {name} must be a positive int or None, got {value!r}")
    if not isinstance(actor_cpus, (int, float)) or actor_cpus < 0:
        raise UsageError(f"ray sandbox actor_cpus must be a number >= 0, got {actor_cpus!r}")


class RaySandbox(Sandbox):
    """Runs programs in docker pools owned by Ray actors across a cluster.

    Args:
        address: Which Ray cluster (see the module docstring); ``None`` starts a private
            loopback-only instance when this process has no connection and no ``RAY_ADDRESS``.
        actors: Number of actors (default: one per alive node), spread over the nodes.
        per_actor: Containers in each actor's pool (default: the CPUs of its node).
        image: Sandbox image, which every node needs (default: the docker backend's).
        limits: Default per-test limits (also the size of each container's cgroup).
        actor_cpus: CPUs each actor reserves in Ray's accounting. Its containers' CPU use is
            outside Ray's view; reserve ``per_actor`` to keep Ray from placing other work on
            those cores, at the price of actors that wait when the cluster is full.

    Raises:
        SandboxSetupError: Ray is missing, the cluster cannot be reached, or the actors
            cannot start (e.g. a node lacks Docker or the image; the message says which).
        UsageError: an argument is malformed.
    """

    name = "ray"
    _relay: _Relay | None
    _thread: threading.Thread | None

    def __init__(
        self,
        address: str | None = None,
        actors: int | None = None,
        per_actor: int | None = None,
        image: str | None = None,
        limits: Limits | None = None,
        actor_cpus: float = 0.0,
    ) -> None:
        from codegym.sandbox.docker import IMAGE

        super().__init__(limits)
        _validate(address, actors, per_actor, actor_cpus)
        self.image = image or IMAGE
        self.per_actor = per_actor
        self.actor_cpus = float(actor_cpus)
        self._init_state()
        self._address = address
        self._actor_count = actors
        if _forked_from_driver():
            self._address = address or _connected_address
            self._relay = _Relay(self.config())
            self._close_at_exit()
            return
        self._address = connect(address)
        self._registered = True
        ray = import_ray()
        self._actor_count = actors or max(1, sum(1 for n in ray.nodes() if n.get("Alive")))
        self._start_actors(ray)
        self._close_at_exit()
        self._thread = threading.Thread(target=self._dispatch, name="codegym-ray", daemon=True)
        self._thread.start()

    def _init_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._queue: deque[_Pending] = deque()
        self._events: queue.SimpleQueue[tuple[str, _Actor | None, Any]] = queue.SimpleQueue()
        self._actors: list[_Actor] = []
        self._start_failures: dict[int, int] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._broken: SandboxError | None = None
        self._thread = None
        self._relay = None
        self._registered = False

    # -- public API
    @property
    def size(self) -> int:
        if self._relay is not None:
            return self._relay.size
        sizes = [a.size for a in self._actors if a.ready]
        return sum(sizes) or (self._actor_count or 1) * (self.per_actor or 1)

    def config(self) -> dict[str, Any]:
        return {
            "address": self._address,
            "actors": self._actor_count,
            "per_actor": self.per_actor,
            "image": self.image,
            "limits": self.limits,
            "actor_cpus": self.actor_cpus,
        }

    def describe(self) -> list[dict[str, Any]]:
        """One dict per started actor: its Ray ``name`` (in namespace :data:`NAMESPACE`),
        ``node_id``, ``node_ip``, ``pid``, pool ``size``, ``image`` and ``docker`` engine."""
        return [{"name": a.name, **a.info} for a in list(self._actors) if a.ready]

    def submit(self, job: Job) -> Future[ExecutionResult]:
        return self._submit_all([job])[0]

    def run_batch(self, jobs: Sequence[Job]) -> list[ExecutionResult]:
        # Queued at once, so the dispatcher sends them in a few large calls, not one by one.
        return [f.result() for f in self._submit_all(jobs)]

    def _submit_all(self, jobs: Sequence[Job]) -> list[Future[ExecutionResult]]:
        for job in jobs:
            if not isinstance(job, Job):
                raise TypeError(f"submit() takes a Job, got {type(job).__name__}")
        jobs = [job.with_limits(self.limits) for job in jobs]
        if self._pid != os.getpid():
            self._become_relay()
        pending = [_Pending(job, Future(), _job_budget(job)) for job in jobs]
        with self._lock:
            if self._closed:
                raise SandboxError("the ray sandbox is closed")
            if self._broken is not None:
                raise self._broken
            if self._relay is not None:
                return [self._relay.submit(job) for job in jobs]
            self._queue.extend(pending)
        self._events.put(("wake", None, None))
        return [p.future for p in pending]

    def close(self) -> None:
        if getattr(self, "_pid", None) != os.getpid():  # the parent's actors: not ours
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._relay is not None:
            self._relay.close()
            return
        self._events.put(("wake", None, None))
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        self._stop_actors(self._actors)
        error = SandboxError("the ray sandbox was closed")
        for p in [p for a in self._actors for p in a.jobs.values()] + list(self._queue):
            if not p.future.done():
                p.future.set_exception(error)
        self._actors.clear()
        self._queue.clear()
        if self._registered:
            self._registered = False
            _release()

    # -- actors
    def _spawn(self, ray: Any, slot: int) -> _Actor:
        name = f"{ACTOR_PREFIX}{uuid.uuid4().hex[:12]}"
        pool: dict[str, Any] = {"size": self.per_actor, "limits": self.limits, "image": self.image}
        handle = (
            _actor_class(ray)
            .options(
                name=name,
                namespace=NAMESPACE,
                scheduling_strategy="SPREAD",
                num_cpus=self.actor_cpus,
                max_restarts=0,
                max_task_retries=0,
            )
            .remote(pool)
        )
        return _Actor(slot, handle, name, time.monotonic())

    def _start_actors(self, ray: Any) -> None:
        """Start the actors and wait until each has its pool up, or fail with the reason."""
        actors = [self._spawn(ray, slot) for slot in range(self._actor_count or 1)]
        try:
            infos = ray.get([a.handle.describe.remote() for a in actors], timeout=_READY_TIMEOUT_S)
        except Exception as e:
            self._stop_actors(actors, graceful=False)
            self._registered = False
            _release()
            raise SandboxSetupError(
                f"the ray sandbox's actors did not start ({_why(e)}); "
                "`codegym sandbox doctor --ray` checks every node"
            ) from None
        for actor, info in zip(actors, infos, strict=True):
            actor.ready, actor.size, actor.info = True, int(info["size"]), info
        self._actors = actors

    def _stop_actors(self, actors: list[_Actor], graceful: bool = True) -> None:
        ray = sys.modules.get("ray")
        if ray is None or not ray.is_initialized():
            return
        if graceful:  # each actor removes its containers; a dead one just answers at once
            with contextlib.suppress(Exception):
                refs = [a.handle.close.remote() for a in actors]
                ray.wait(refs, num_returns=len(refs), timeout=60)
        for a in actors:
            with contextlib.suppress(Exception):
                ray.kill(a.handle)

    def _watch(self, kind: str, actor: _Actor, ref: Any) -> None:
        """Post ``(kind, actor, future)`` to the dispatcher when ``ref`` resolves."""
        ref.future().add_done_callback(lambda f: self._events.put((kind, actor, f)))

    # -- the dispatcher thread
    def _dispatch(self) -> None:
        try:
            while True:
                events = []
                try:
                    events.append(self._events.get(timeout=self._next_timeout()))
                    while True:
                        events.append(self._events.get_nowait())
                except queue.Empty:
                    pass
                with self._lock:
                    if self._closed:
                        return
                for kind, actor, future in events:
                    if actor is not None and actor in self._actors:
                        self._handle(kind, actor, future)
                self._check_deadlines()
                self._assign()
        except BaseException as e:  # the dispatcher must never die silently
            log.exception("the ray sandbox dispatcher failed")
            self._fail_everything(SandboxError(f"the ray sandbox dispatcher failed: {e}"))

    def _handle(self, kind: str, actor: _Actor, future: Future[Any]) -> None:
        try:
            value = future.result()
        except Exception as e:
            self._replace(actor, _why(e))
            return
        if kind == "ready":
            actor.ready, actor.size, actor.info = True, int(value["size"]), value
            self._start_failures[actor.slot] = 0
        elif kind == "results":
            actor.collecting = False
            failure = ""
            for job_id, result in pickle.loads(value):
                if isinstance(result, str):  # the actor's pool failed it: the actor is unwell
                    failure = result
                    continue
                pending = actor.jobs.pop(job_id, None)
                if pending is not None and not pending.future.done():
                    pending.future.set_result(replace(result, backend=self.name))
            if failure:  # its failed and unfinished jobs run again elsewhere
                self._replace(actor, f"its docker pool failed: {failure}")

    def _assign(self) -> None:
        """Hand queued jobs to actors with room, a container's worth to each in turn."""
        ready = sorted(
            (a for a in self._actors if a.ready), key=lambda a: len(a.jobs) / max(1, a.size)
        )
        batches: dict[_Actor, list[_Pending]] = {a: [] for a in ready}
        progress = True
        while progress:
            progress = False
            for actor in ready:
                room = actor.size * _IN_FLIGHT_PER_CONTAINER - len(actor.jobs)
                room -= len(batches[actor])
                take = min(room, actor.size)
                with self._lock:
                    while take > 0 and self._queue:
                        pending = self._queue.popleft()
                        if pending.attempts or pending.future.set_running_or_notify_cancel():
                            batches[actor].append(pending)
                            take -= 1
                            progress = True
        for actor, batch in batches.items():
            if batch:
                self._send(actor, batch)
            if actor.jobs and not actor.collecting:
                actor.collecting = True
                low_water = actor.size * _LOW_WATER_PER_CONTAINER
                ref = actor.handle.collect.remote(low_water, _LINGER_S)
                self._watch("results", actor, ref)

    def _send(self, actor: _Actor, batch: list[_Pending]) -> None:
        items = []
        for pending in batch:
            job_id = next(self._ids)
            pending.attempts += 1
            actor.jobs[job_id] = pending
            items.append((job_id, pending.job))
        # Behind the jobs already there, each of which may take its whole budget.
        waiting = max(p.budget for p in actor.jobs.values()) * _IN_FLIGHT_PER_CONTAINER
        deadline = time.monotonic() + _HANG_SLACK_S + waiting
        for pending in batch:
            pending.deadline = deadline
        # Pickled here: Ray would use cloudpickle, four times slower on these dataclasses.
        payload = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
        self._watch("sent", actor, actor.handle.submit.remote(payload))

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for actor in list(self._actors):
            if not actor.ready and now - actor.started_at > _READY_TIMEOUT_S:
                self._replace(actor, f"it did not start within {_READY_TIMEOUT_S:.0f} s")
            elif any(p.deadline < now for p in actor.jobs.values()):
                self._replace(actor, "it stopped answering")

    def _next_timeout(self) -> float:
        deadlines = [p.deadline for a in self._actors for p in a.jobs.values()]
        deadlines += [a.started_at + _READY_TIMEOUT_S for a in self._actors if not a.ready]
        if not deadlines:
            return 5.0
        return min(5.0, max(0.0, min(deadlines) - time.monotonic()))

    def _replace(self, actor: _Actor, reason: str) -> None:
        """Kill ``actor``, start another in its place, and run its jobs again elsewhere."""
        log.warning("replacing ray sandbox actor %s: %s", actor.name, reason)
        self._actors.remove(actor)
        self._stop_actors([actor], graceful=False)
        requeue = []
        for pending in actor.jobs.values():
            if pending.attempts < _MAX_ATTEMPTS:
                requeue.append(pending)
            elif not pending.future.done():
                message = f"ray actor failed: {reason} (after a retry on another actor)"
                pending.future.set_result(infra_error(pending.job.tests, message, self.name))
        actor.jobs.clear()
        with self._lock:
            self._queue.extendleft(reversed(requeue))  # first in, first out again
        if not actor.ready:
            self._start_failures[actor.slot] = self._start_failures.get(actor.slot, 0) + 1
        if self._start_failures.get(actor.slot, 0) < _MAX_START_FAILURES:
            fresh = self._spawn(import_ray(), actor.slot)
            self._actors.append(fresh)
            self._watch("ready", fresh, fresh.handle.describe.remote())
        else:
            log.error("giving up on a ray sandbox actor: %d starts failed", _MAX_START_FAILURES)
        if not self._actors:
            self._fail_everything(
                SandboxError(
                    f"no ray sandbox actor is left ({reason}); `codegym sandbox doctor --ray` "
                    "says what is wrong"
                )
            )

    def _fail_everything(self, error: SandboxError) -> None:
        with self._lock:
            self._broken = error  # later submits raise instead of waiting forever
            pending = list(self._queue)
            self._queue.clear()
        for actor in self._actors:
            pending += list(actor.jobs.values())
            actor.jobs.clear()
        for p in pending:
            if not p.future.done():
                p.future.set_result(infra_error(p.job.tests, str(error), self.name))

    # -- forks
    def _become_relay(self) -> None:
        """In a forked process: a relay of our own (the parent's actors and threads stay)."""
        config = self.config()
        self._init_state()
        self._relay = _Relay(config)
        self._close_at_exit()

    def _close_at_exit(self) -> None:
        """Close this sandbox when the process exits, if nothing closed it before."""
        ref = weakref.ref(self)
        # atexit: registered after ray.init, so it runs before Ray's own exit hook (atexit is
        # LIFO), while the actors can still remove their containers. Finalize: for
        # multiprocessing children, which leave through os._exit after running these.
        atexit.register(_close_if_alive, ref)
        util.Finalize(self, _close_if_alive, args=(ref,), exitpriority=10)


def _close_if_alive(ref: weakref.ReferenceType[RaySandbox]) -> None:
    sandbox = ref()
    if sandbox is not None:
        sandbox.close()


# ----------------------------------------------------------------------------- the relay
class _Relay:
    """A RaySandbox in a fresh interpreter, for a process that got its sandbox through fork.

    Ray's connection does not survive fork (its threads stay in the parent), so a forked
    process talks to a child interpreter of its own, which joins the same cluster with actors
    of its own and takes jobs and returns results over two pipes.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        jobs_r, jobs_w = os.pipe()
        results_r, results_w = os.pipe()
        paths = os.pathsep.join(p for p in sys.path if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _RELAY_COMMAND, str(jobs_r), str(results_w)],
            pass_fds=(jobs_r, results_w),
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": paths},
        )
        os.close(jobs_r)
        os.close(results_w)
        self._out = Connection(jobs_w, readable=False)
        self._in = Connection(results_r, writable=False)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._futures: dict[int, tuple[Future[ExecutionResult], Job]] = {}
        try:
            self._out.send(config)
            if not self._in.poll(_READY_TIMEOUT_S):
                raise SandboxError("the ray relay did not start in time")
            status, detail = self._in.recv()
        except (EOFError, OSError, SandboxError) as e:
            self._kill()
            raise SandboxError(f"the ray relay for a forked process failed: {e}") from None
        if status != "ready":
            self._kill()
            raise SandboxSetupError(f"the ray relay for a forked process failed: {detail}")
        self.size = int(detail)
        self._reader = threading.Thread(target=self._read, name="codegym-ray-relay", daemon=True)
        self._reader.start()

    def submit(self, job: Job) -> Future[ExecutionResult]:
        future: Future[ExecutionResult] = Future()
        with self._lock:
            job_id = next(self._ids)
            self._futures[job_id] = (future, job)
            try:
                self._out.send((job_id, job))
            except OSError as e:
                del self._futures[job_id]
                raise SandboxError(f"the ray relay is gone: {e}") from None
        return future

    def _read(self) -> None:
        while True:
            try:
                job_id, outcome = self._in.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                future, _ = self._futures.pop(job_id, (None, None))
            if future is None:
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        with self._lock:
            left, self._futures = list(self._futures.values()), {}
        for future, job in left:
            if not future.done():
                future.set_result(infra_error(job.tests, "the ray relay exited", "ray"))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._out.send(None)
        try:
            self._proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self._kill()
        self._reader.join(timeout=10)
        for conn in (self._out, self._in):
            conn.close()

    def _kill(self) -> None:
        self._proc.kill()
        self._proc.wait()


_RELAY_COMMAND = "from codegym.sandbox.ray import relay_main; relay_main()"


def relay_main() -> None:
    """The relay interpreter: a RaySandbox fed over the pipes named by ``sys.argv``."""
    inbox = Connection(int(sys.argv[1]), writable=False)
    outbox = Connection(int(sys.argv[2]), readable=False)
    lock = threading.Lock()

    def reply(message: Any) -> None:
        with lock, contextlib.suppress(OSError):
            outbox.send(message)

    def answer(job_id: int, future: Future[ExecutionResult]) -> None:
        reply((job_id, future.exception() or future.result()))

    config = inbox.recv()
    try:
        sandbox = RaySandbox(**config)
    except Exception as e:
        reply(("error", f"{type(e).__name__}: {e}"))
        return
    reply(("ready", sandbox.size))
    try:
        while True:
            try:
                message = inbox.recv()
            except EOFError:  # the forked process is gone
                break
            if message is None:
                break
            job_id, job = message
            sandbox.submit(job).add_done_callback(functools.partial(answer, job_id))
    finally:
        sandbox.close()


# ----------------------------------------------------------------------------- doctor
def _node_report(image: str) -> dict[str, Any]:
    """Run on one node (a Ray task): codegym's version there, its Docker engine, the image."""
    from codegym import __version__
    from codegym.sandbox.docker import docker_client

    report: dict[str, Any] = {"codegym": __version__}
    try:
        client = docker_client(timeout=10)
    except SandboxError as e:
        return {**report, "error": str(e)}
    try:
        report["docker"] = client.version().get("Version", "?")
        try:
            client.images.get(image)
            report["image"] = True
        except Exception:
            report["image"] = False
    finally:
        client.close()
    return report


def doctor(address: str | None = None, image: str | None = None) -> int:
    """``codegym sandbox doctor --ray``: the cluster, each node's Docker and image, the
    codegym actors already in it, and a real execution through actors on the nodes that are
    ready. Prints ``[ok]``/``[fail]`` lines; returns the exit status (1 if anything failed).

    Raises:
        UsageError: ``address`` is not a Ray address.
    """
    from codegym.sandbox.docker import IMAGE

    _validate(address, None, None, 0.0)
    image = image or IMAGE
    try:
        resolved = connect(address)
    except SandboxError as e:
        print(f"[fail] {e}")
        return 1
    ray = import_ray()
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        print(f"[ok]   Ray {ray.__version__} at {resolved}: {len(nodes)} node(s) alive")
        ready = sum(_doctor_node(ray, node, image) for node in nodes)
        named = ray.util.list_named_actors(all_namespaces=True)
        ours = [a for a in named if a.get("namespace") == NAMESPACE]
        print(f"[info] {len(ours)} codegym sandbox actor(s) of running programs in the cluster")
        ok = ready == len(nodes) and ready > 0
        if ready:
            ok = _doctor_run(resolved, ready, image) and ok
        return 0 if ok else 1
    finally:
        _release()


def _doctor_node(ray: Any, node: dict[str, Any], image: str) -> bool:
    """Check one node; whether it can host an actor."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    where = f"node {node.get('NodeManagerAddress', '?')} ({str(node['NodeID'])[:8]})"
    strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
    check = ray.remote(num_cpus=0)(_node_report).options(scheduling_strategy=strategy)
    try:
        report = ray.get(check.remote(image), timeout=_READY_TIMEOUT_S)
    except Exception as e:
        print(f"[fail] {where}: {_why(e)} (is codegym installed there? {INSTALL_HINT})")
        return False
    if "error" in report:
        print(f"[fail] {where}: {report['error']}")
        return False
    if not report["image"]:
        print(
            f"[fail] {where}: Docker {report['docker']}, but the image {image} is missing: "
            "build it there (`codegym sandbox build`, with the same --packages/--tag), or copy "
            f"it: `docker save {image} | gzip > sandbox.tar.gz` here, `docker load < "
            "sandbox.tar.gz` there"
        )
        return False
    print(f"[ok]   {where}: codegym {report['codegym']}, Docker {report['docker']}, {image}")
    return True


def _doctor_run(address: str, actors: int, image: str) -> bool:
    """Run programs through ``actors`` fresh actors of one container each; whether all passed."""
    from codegym.sandbox.types import TestCase

    program = "print(sum(map(int, input().split())))\n"
    jobs = [Job(program, (TestCase.stdio(f"{i} 3", str(i + 3)),)) for i in range(4 * actors)]
    try:
        sb = RaySandbox(address=address, actors=actors, per_actor=1, image=image)
    except SandboxError as e:
        print(f"[fail] {e}")
        return False
    try:
        start = time.perf_counter()
        results = sb.run_batch(jobs)
        took = time.perf_counter() - start
        for a in sb.describe():
            print(f"[ok]   actor {a['name']} started on node {a['node_ip']} (pid {a['pid']})")
    finally:
        sb.close()
    failed = [r for r in results if not r.passed]
    if failed:
        print(f"[fail] {len(failed)} of {len(jobs)} programs did not pass: {failed[0].verdict}")
        return False
    print(f"[ok]   {len(jobs)} programs ran through {actors} actor(s) in {took * 1000:.0f} ms")
    return True
