"""The ``process`` backend: the same runner as a local subprocess. It does NOT isolate.

For trusted code and machines without Docker. Time, CPU, address-space and file-size limits
still apply, and every process the candidate starts is killed after each run (the runner is a
child subreaper), but the candidate runs as your user, can read and write your files and use
the network. Prefer ``make_sandbox("docker")`` for anything a model wrote.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path
from typing import Any

from codegym.sandbox import runner
from codegym.sandbox.base import PooledSandbox, Worker
from codegym.sandbox.types import Limits

_WARNING = (
    "codegym's 'process' sandbox does NOT isolate: candidate programs run as your user with "
    "access to your files and network. Use make_sandbox('docker') for untrusted code."
)


def _site_packages() -> list[str]:
    """This interpreter's site-packages directories. The runner starts without ``site`` (no
    ``.pth`` files run, a smaller process to fork), so it is told where the installed
    packages are: programs import numpy here as they do in the docker image."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys(paths[k] for k in ("purelib", "platlib") if k in paths))


class _ProcessWorker(Worker):
    def __init__(self, workdir: str) -> None:
        super().__init__()
        self.workdir = workdir
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                runner.__file__,
                runner.LOCAL,
                workdir,
                str(os.getuid()),
                *_site_packages(),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            bufsize=0,
            close_fds=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MALLOC_ARENA_MAX": "2"},
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)

    def read_fd(self) -> int:
        return self._out

    def write_fd(self) -> int:
        return self._in

    def read(self) -> list[dict[str, Any]] | None:
        try:
            data = os.read(self._out, 1 << 20)
        except BlockingIOError:
            return []
        if not data:
            return None
        return self.decoder.feed(data)

    def write(self, data: bytes) -> int:
        return os.write(self._in, data)

    def kill(self) -> None:
        if self.proc.poll() is None:
            # The candidate's processes first: they may have left the runner's session, but
            # they are still its descendants (the runner is their subreaper).
            for pid in runner._descendants(self.proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        shutil.rmtree(self.workdir, ignore_errors=True)


class ProcessSandbox(PooledSandbox):
    """Runs programs in local subprocesses (no isolation; warns when created).

    Args:
        size: Number of runner processes (default: the number of CPUs).
        limits: Default per-test limits for jobs that carry none.
        warn: Emit the "does not isolate" warning (on by default).
    """

    name = "process"

    def __init__(
        self, size: int | None = None, limits: Limits | None = None, warn: bool = True
    ) -> None:
        self._warn = warn
        if warn:
            warnings.warn(_WARNING, RuntimeWarning, stacklevel=3)
        super().__init__(size, limits)
        self._root = Path(tempfile.mkdtemp(prefix="codegym-process-"))
        self._start()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "warn": self._warn}

    def _spawn(self) -> Worker:
        return _ProcessWorker(tempfile.mkdtemp(prefix="work-", dir=self._root))

    def _after_fork(self) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="codegym-process-"))

    def close(self) -> None:
        if self._inherited():  # the parent's pool and work dirs: not ours to remove
            return
        super().close()
        shutil.rmtree(self._root, ignore_errors=True)
