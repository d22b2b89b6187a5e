"""The ``docker`` backend: a pool of warm, locked-down containers, one runner in each.

Each container starts once and serves many executions: the runner inside forks a child per
execution, so neither a container start (~0.3 s) nor a ``docker exec`` (~70 ms) sits on the
per-execution path. The runner's source reaches it over the container's attached stdin (the
Docker SDK's attach socket). Then the runner connects to a Unix socket the host listens on, in
a folder private to the host's uid that is mounted read-only at ``/run/codegym``, and the
protocol runs over that connection: Docker's attach relay (``dockerd`` and the container's shim
copying every byte twice each way) cost 6% of a check's CPU. The host removes the socket
once the runner is connected, before any candidate runs, and the candidate's uid cannot enter
the folder. A runner that cannot reach the socket (a daemon on another machine, SELinux labels,
remapped uids) stays on the attach stream, as does every runner with
``CODEGYM_DOCKER_DIRECT_SOCKET=0``. No network or ``docker exec`` is needed.

Container settings, and why:

- ``--network none``: only ``lo`` exists inside.
- ``--read-only`` root, a size- and inode-capped ``tmpfs`` work dir owned by the candidate's
  uid, and a small ``/dev/shm``: nothing persists, and the runner wipes both after every
  execution.
- ``--memory`` with ``--memory-swap`` equal to it: the cgroup OOM-kills (exit 137) instead of
  swapping, and this holds across forked children. The runner raises its children's OOM score
  so the candidate, not the runner, is the one killed.
- ``--pids-limit``: fork and thread bombs stop at the cgroup.
- ``--cpus``: one CPU per container, so a spinning program cannot starve its neighbours.
- ``--cap-drop ALL`` plus only SETUID, SETGID and KILL, ``no-new-privileges``, ``--init``: the
  runner (root in the container, with just those three capabilities) drops each child to an
  unprivileged uid with no capabilities at all, so the candidate cannot signal the runner,
  read its ``/proc`` entries, or gain privileges; ``docker-init`` reaps zombies as PID 1.
- Names ``codegym-<uuid>`` and labels, so stale containers can be found and removed.

Images: :func:`image_tag` names the image holding a set of Debian packages, so the tag says
what the image holds (``codegym sandbox build --packages`` builds others; see
:mod:`codegym.sandbox.image`). A container that could not be removed while the daemon was
away is removed once it answers again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import selectors
import shutil
import socket
import struct
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from codegym import __version__
from codegym.errors import UsageError
from codegym.sandbox import runner
from codegym.sandbox.base import (
    DEFAULT_OUTAGE_TIMEOUT_S,
    PooledSandbox,
    SandboxError,
    SandboxSetupError,
    Worker,
)
from codegym.sandbox.types import Limits

log = logging.getLogger(__name__)

#: Debian packages every sandbox image holds besides ``python3``: interview-style datasets
#: (LeetCode-derived) import sortedcontainers in their standard header, and APPS and contest
#: solutions import numpy.
DEFAULT_PACKAGES = ("python3-numpy", "python3-sortedcontainers")
#: Image label listing the Debian packages the image was built with.
PACKAGES_LABEL = "codegym.packages"
#: Debian policy for package names (section 5.6.1).
_PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")


def image_packages(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The Debian packages of the image with ``extra`` on top of the defaults: sorted, once
    each, ``python3`` included.

    Raises:
        UsageError: a name is not a Debian package name.
    """
    if isinstance(extra, str):
        raise UsageError(f"packages must be a list of names, got the string {extra!r}")
    extra = [p.strip() for p in extra if p.strip()]
    bad = [p for p in extra if not _PACKAGE_NAME.fullmatch(p)]
    if bad:
        raise UsageError(
            f"{', '.join(map(repr, bad))}: not a Debian package name (lower-case letters, "
            "digits, '+', '-', '.'); give names as `apt-get install` takes them, e.g. "
            "python3-scipy"
        )
    return tuple(sorted({"python3", *DEFAULT_PACKAGES, *extra}))


def image_tag(extra: Iterable[str] = ()) -> str:
    """The tag of the image holding the default packages plus ``extra``.

    ``codegym-sandbox:<version>-<hash>``, the hash (8 hex digits of SHA-256) over the sorted
    package set, so that each set has its own tag and a change of the default set gives a
    new default tag (a machine with an older image builds the new one).
    """
    digest = hashlib.sha256(" ".join(image_packages(extra)).encode()).hexdigest()[:8]
    return f"codegym-sandbox:{__version__}-{digest}"


#: The default image (``codegym sandbox build`` without ``--packages``).
IMAGE = image_tag()
#: Label put on every container codegym starts (value: the owning process id).
LABEL = "codegym.sandbox"
#: Label naming the sandbox (pool) a container belongs to: a process may hold several.
POOL_LABEL = "codegym.pool"
#: The unprivileged uid/gid candidate programs run as ("nobody").
CANDIDATE_UID = 65534
#: Memory the runner itself needs on top of a job's limit.
_RUNNER_MEMORY_MB = 96
_DEMUX_HEADER = struct.Struct(">BxxxI")
#: Where the host's direct socket is mounted in the container, and its name.
_RUN_DIR = "/run/codegym"
_SOCKET_NAME = "runner.sock"
#: How long a starting container's runner has to connect or to answer on the attach stream.
_CONNECT_TIMEOUT_S = 30.0
#: Set to 0 to keep the protocol on Docker's attach stream.
DIRECT_SOCKET_ENV = "CODEGYM_DOCKER_DIRECT_SOCKET"


def direct_socket_enabled() -> bool:
    """Whether containers are offered the direct socket (``CODEGYM_DOCKER_DIRECT_SOCKET``,
    default on): only a daemon on this machine can mount this machine's directory, and the
    runner falls back to the attach stream when it cannot reach it."""
    return os.environ.get(DIRECT_SOCKET_ENV, "1").strip().lower() not in ("0", "false", "no")


#: The container's command: read the runner's source as one frame from stdin, then run it.
#: (Passing the source itself on the command line would fill every `ps` and `docker ps`.)
_BOOTSTRAP = (
    "import os,struct\n"
    "def r(n):\n"
    " b=b''\n"
    " while len(b)<n:\n"
    "  c=os.read(0,n-len(b))\n"
    "  if not c:raise SystemExit(1)\n"
    "  b+=c\n"
    " return b\n"
    "s=r(struct.unpack('>I',r(4))[0])\n"
    "exec(compile(s,'runner.py','exec'),{'__name__':'__main__'})\n"
)


def _runner_source() -> bytes:
    return Path(runner.__file__).read_bytes()


def docker_client(timeout: float = 30.0) -> Any:
    """A connected ``docker.DockerClient``.

    Raises:
        SandboxSetupError: the SDK is missing or no daemon answers (with what to do).
    """
    try:
        import docker
    except ImportError as e:
        raise SandboxSetupError("the 'docker' Python package is missing: pip install docker") from e
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as e:
        raise SandboxSetupError(
            f"no Docker daemon answers ({e}). Start one (as root: `dockerd &`, or run "
            "scripts/setup.sh), or use make_sandbox('process') for trusted code."
        ) from None
    return client


def docker_available(image: str = IMAGE) -> tuple[bool, str]:
    """Whether a daemon answers and ``image`` exists, and if not, why."""
    try:
        client = docker_client(timeout=5)
    except SandboxError as e:
        return False, str(e)
    try:
        client.images.get(image)
    except Exception:
        return False, missing_image_message(image)
    finally:
        client.close()
    return True, "ok"


def missing_image_message(image: str, packages: Iterable[str] = ()) -> str:
    """What to do about a missing image: the build command that makes it (``packages``: the
    extra packages it was named for, when known)."""
    packages = list(packages)
    if packages and image == image_tag(packages):
        how = f"`codegym sandbox build --packages {','.join(packages)}` (as root)"
    elif image == IMAGE:
        how = "`codegym sandbox build` (as root)"
    else:
        how = "`codegym sandbox build --packages A,B` with the packages it was named for"
    return f"the sandbox image {image} is missing: build it with {how}"


class _ContainerWorker(Worker):
    def __init__(
        self,
        client: Any,
        image: str,
        limits: Limits,
        owner: str,
        pool: str,
        left_behind: Callable[[], None],
    ) -> None:
        super().__init__()
        self.client = client
        self._left_behind = left_behind
        self.name = f"codegym-{uuid.uuid4().hex[:12]}"
        self._demux = bytearray()
        self._stderr = bytearray()
        #: Whether the protocol runs over the direct socket (else Docker's attach stream).
        self.direct = False
        self._listen()
        api = client.api
        memory = f"{int(limits.memory_mb) + _RUNNER_MEMORY_MB}m"
        host_config = api.create_host_config(
            network_mode="none",
            read_only=True,
            tmpfs={
                # nr_inodes bounds the wipe after each run (a program creating files by the
                # hundred thousand would otherwise make the next one wait).
                "/work": f"size=64m,nr_inodes=16384,exec,uid={CANDIDATE_UID},gid={CANDIDATE_UID},"
                "mode=0755",
            },
            shm_size=16 << 20,
            mem_limit=memory,
            memswap_limit=memory,
            pids_limit=int(limits.pids) + 8,
            nano_cpus=1_000_000_000,
            cap_drop=["ALL"],
            cap_add=["SETUID", "SETGID", "KILL"],
            security_opt=["no-new-privileges"],
            init=True,
            ipc_mode="private",
            binds={self._dir: {"bind": _RUN_DIR, "mode": "ro"}} if self._dir else None,
        )
        container = api.create_container(
            image,
            # Without -S: site puts Debian's dist-packages (numpy, ...) on sys.path, and
            # candidates see the interpreter `python3 prog.py` would give them.
            command=[
                "python3",
                "-I",
                "-c",
                _BOOTSTRAP,
                runner.CONTAINER,
                "/work",
                str(CANDIDATE_UID),
            ],
            name=self.name,
            user="0:0",
            working_dir="/work",
            stdin_open=True,
            tty=False,
            network_disabled=True,
            environment={
                "MALLOC_ARENA_MAX": "2",
                "LANG": "C.UTF-8",
                **(
                    {
                        runner.SOCKET_ENV: f"{_RUN_DIR}/{_SOCKET_NAME}",
                        runner.HOST_UID_ENV: str(os.getuid()),
                    }
                    if self._listener is not None
                    else {}
                ),
            },
            labels={LABEL: owner, POOL_LABEL: pool, "codegym.version": __version__},
            host_config=host_config,
        )
        self.id = container["Id"]
        try:
            raw = api.attach_socket(
                self.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            sock = getattr(raw, "_sock", raw)
            if not isinstance(sock, socket.socket):
                raise SandboxError(f"unsupported Docker transport: {type(sock).__name__}")
            self._raw = raw  # keeps the HTTP response (and so the socket) alive
            self.sock = sock
            api.start(self.id)
            source = _runner_source()
            self.sock.sendall(runner.FRAME_HEADER.pack(len(source)) + source)
            if self._listener is not None:
                self._take_direct_socket()
            self.sock.setblocking(False)
        except BaseException:
            self._remove()
            raise

    def _listen(self) -> None:
        """A Unix socket in a directory only this uid can enter, mounted into the container
        (read-only) for the runner to connect to: the protocol then bypasses Docker's attach
        relay (``dockerd`` and the shim copy every byte twice each way). Where it cannot be
        made (or ``CODEGYM_DOCKER_DIRECT_SOCKET=0``), ``_listener`` stays ``None`` and the
        runner keeps to the attach stream."""
        self._dir: str | None = None
        self._listener: socket.socket | None = None
        if not direct_socket_enabled():
            return
        try:
            self._dir = tempfile.mkdtemp(prefix="codegym-")  # mode 0700
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(os.path.join(self._dir, _SOCKET_NAME))
            listener.listen(1)
            self._listener = listener
        except OSError as e:
            log.debug("no direct socket for %s: %s", self.name, e)
            self._close_listener()

    def _take_direct_socket(self) -> None:
        """Wait for the runner to connect to the direct socket, or to speak on the attach
        stream's stdout (it could not reach the socket: a remote daemon, SELinux, user
        namespaces); either way, close what is not used. What the runner writes to stderr
        meanwhile is kept for :meth:`stderr_tail`."""
        assert self._listener is not None
        deadline = time.monotonic() + _CONNECT_TIMEOUT_S
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, "direct")
        sel.register(self.sock, selectors.EVENT_READ, "attach")
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                events = {key.data for key, _ in sel.select(remaining)}
                if "direct" in events:
                    conn, _ = self._listener.accept()
                    self._close_listener()  # unlinks the path: nothing else can connect
                    try:
                        self._raw.close()
                    except Exception:
                        pass
                    self.sock.close()
                    self.sock = conn
                    self.direct = True
                    return
                if "attach" in events and not self._consume_attach_stderr():
                    break  # stdout (the runner's protocol) or the end of the stream
        finally:
            sel.close()
        self._close_listener()

    def _consume_attach_stderr(self) -> bool:
        """Take the complete stderr frames at the head of the attach stream; False once a
        stdout frame (left unread, for the dispatcher) or the stream's end comes first."""
        head = self.sock.recv(1 << 16, socket.MSG_PEEK)
        if not head:
            return False
        taken = 0
        stdout_next = False
        while len(head) - taken >= 8:
            stream, size = _DEMUX_HEADER.unpack_from(head, taken)
            if stream == 1:
                stdout_next = True
                break
            if len(head) - taken < 8 + size:
                break
            self._stderr += head[taken + 8 : taken + 8 + size]
            taken += 8 + size
        if taken:
            self.sock.recv(taken)
        elif not stdout_next:
            time.sleep(0.001)  # part of a frame: the rest is on its way
        return not stdout_next

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def read_fd(self) -> int:
        return self.sock.fileno()

    def write_fd(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[dict[str, Any]] | None:
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return []
        if not data:
            return None
        if self.direct:
            return self.decoder.feed(data)
        self._demux += data
        out = bytearray()
        buf = self._demux
        while len(buf) >= 8:
            stream, size = _DEMUX_HEADER.unpack_from(buf)
            if len(buf) < 8 + size:
                break
            payload = buf[8 : 8 + size]
            if stream == 1:
                out += payload
            else:
                self._stderr += payload
                del self._stderr[: max(0, len(self._stderr) - 16384)]
            del buf[: 8 + size]
        return self.decoder.feed(bytes(out)) if out else []

    def write(self, data: bytes) -> int:
        return self.sock.send(data)

    def stderr_tail(self) -> str:
        if self.direct:  # the runner's stderr went to the container's log
            try:
                logs = self.client.api.logs(self.id, stdout=False, stderr=True, tail=40)
                return bytes(logs).decode("utf-8", "replace")[-2000:]
            except Exception as e:
                return f"(its log could not be read: {e})"
        return self._stderr.decode("utf-8", "replace")[-2000:]

    def kill(self) -> None:
        try:
            self.sock.close()
        except (OSError, AttributeError):
            pass
        self._close_listener()
        self._remove()

    def _remove(self) -> None:
        if not remove_container(self.client, self.id):
            log.warning(
                "could not remove container %s; removing it once the daemon answers", self.name
            )
            self._left_behind()


def remove_container(client: Any, container_id: str) -> bool:
    """Force-remove a container; ``False`` if the daemon could not do it (it may be away)."""
    try:
        client.api.remove_container(container_id, force=True)
    except Exception as e:
        if "No such container" in str(e) or "already in progress" in str(e):
            return True
        log.debug("removing container %s failed: %s", container_id[:12], e)
        return False
    return True


class DockerSandbox(PooledSandbox):
    """Runs programs in a pool of warm, locked-down Docker containers.

    Args:
        size: Number of containers (default: the number of CPUs).
        limits: Default per-test limits; ``limits.memory_mb`` and ``limits.pids`` also size
            each container's cgroup, which caps jobs asking for more.
        image: Image to run (default: :data:`IMAGE`, the default package set; see
            :func:`image_tag` for others).
        outage_timeout_s: When the daemon goes away, how long jobs wait for it (the pool
            retries starting containers with back-off) before they fail with ``infra_error``.

    Raises:
        SandboxSetupError: no daemon answers, or the image is missing (the message says what
            to do).
    """

    name = "docker"

    def __init__(
        self,
        size: int | None = None,
        limits: Limits | None = None,
        image: str = IMAGE,
        outage_timeout_s: float = DEFAULT_OUTAGE_TIMEOUT_S,
    ) -> None:
        super().__init__(size, limits, outage_timeout_s)
        self.image = image
        self._client = docker_client()
        try:
            self._client.images.get(image)
        except Exception:
            self._client.close()
            raise SandboxSetupError(missing_image_message(image)) from None
        self._owner = str(os.getpid())
        self._pool = uuid.uuid4().hex
        self._sweep_needed = False
        self._start()

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "image": self.image,
            "outage_timeout_s": self.outage_timeout_s,
        }

    def _after_fork(self) -> None:
        # The inherited client's connections are shared with the parent: use a new one.
        self._client = docker_client()
        self._owner = str(os.getpid())
        self._pool = uuid.uuid4().hex
        self._sweep_needed = False

    def _spawn(self) -> Worker:
        try:
            worker = _ContainerWorker(
                self._client, self.image, self.limits, self._owner, self._pool, self._left_behind
            )
        except Exception:
            # The daemon may have made the container and lost the answer (a restart mid-call):
            # such a container is nobody's worker. Looked for once the daemon answers again.
            self._left_behind()
            raise
        if self._sweep_needed and getattr(self, "_thread", None) is not None:
            # The daemon answers (again): remove what it could not, and what was lost track of.
            live = {w.id for w in self._workers if isinstance(w, _ContainerWorker)}
            self._sweep({worker.id, *live})
        return worker

    def _left_behind(self) -> None:
        """A container of this pool may be left: one it could not remove, or one whose start
        lost its answer. The next start that succeeds (and :meth:`close`) looks for them."""
        self._sweep_needed = True

    def _sweep(self, keep: set[str]) -> bool:
        """Remove this pool's containers that are not in ``keep`` (its workers); whether the
        daemon answered."""
        self._sweep_needed = False  # before listing: a removal failing meanwhile sets it again
        try:
            found = self._client.api.containers(
                all=True, quiet=True, filters={"label": f"{POOL_LABEL}={self._pool}"}
            )
        except Exception as e:  # away again: the next start tries
            log.debug("listing this pool's containers failed: %s", e)
            self._sweep_needed = True
            return False
        for c in found:
            if c["Id"] in keep:
                continue
            if remove_container(self._client, c["Id"]):
                log.info("removed container %s, left while the daemon was away", c["Id"][:12])
            else:
                self._sweep_needed = True
        return True

    def transport(self) -> tuple[str, str]:
        """How this process talks to the runners: ``("direct", "")`` when every runner reached
        the direct socket, else ``("attach", why)``, why being ``CODEGYM_DOCKER_DIRECT_SOCKET``
        or what a runner that could not reach the socket wrote to its stderr."""
        workers = [w for w in self._workers if isinstance(w, _ContainerWorker)]
        fallen = [w for w in workers if not w.direct]
        if not fallen:
            return "direct", ""
        if not direct_socket_enabled():
            return "attach", f"{DIRECT_SOCKET_ENV}=0"
        return "attach", fallen[0].stderr_tail().strip()

    def _worker_log(self, worker: Worker) -> str:
        tail = worker.stderr_tail() if isinstance(worker, _ContainerWorker) else ""
        return f"; its last output: {tail}" if tail.strip() else ""

    def close(self) -> None:
        super().close()
        client = getattr(self, "_client", None)
        if client is not None:
            # Every worker is gone now: whatever still carries the pool's label (left while
            # the daemon was away, or a start whose answer an outage cut off) goes too.
            left = self._sweep_needed
            answered = self._sweep(set())
            if self._sweep_needed and (left or answered):  # else: nothing was known to be left
                log.warning(
                    "containers of this sandbox could not be removed (is the daemon away?); "
                    "`codegym sandbox cleanup` removes them later"
                )
            client.close()
            self._client = None


def remove_stale_containers(all_owners: bool = False) -> int:
    """Remove codegym containers whose owning process is gone (or all of them); the count."""
    client = docker_client()
    removed = 0
    try:
        for c in client.containers.list(all=True, filters={"label": LABEL}):
            owner = c.labels.get(LABEL, "")
            if not all_owners and owner.isdigit() and _pid_alive(int(owner)):
                continue
            c.remove(force=True)
            removed += 1
    finally:
        client.close()
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
