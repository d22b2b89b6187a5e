"""How the host talks to each container's runner (docker backend).

By default over a Unix socket the host listens on, in a folder private to its uid mounted
into the container, so no byte goes through Docker's attach relay; the runner falls back to
the attach stream (stdin/stdout) when it cannot reach the socket, as with a daemon on another
machine, and ``CODEGYM_DOCKER_DIRECT_SOCKET=0`` asks for the attach stream outright.
"""

from __future__ import annotations

import os

import pytest

from codegym.sandbox import Job, TestCase, make_sandbox
from codegym.sandbox.cli import _transport
from codegym.sandbox.docker import DIRECT_SOCKET_ENV, DockerSandbox

pytestmark = pytest.mark.docker

DOUBLE = "print(2 * int(input()))\n"


def _passes(sb: DockerSandbox) -> bool:
    results = sb.run_batch([Job(DOUBLE, (TestCase.stdio(str(i), str(2 * i)),)) for i in range(6)])
    return all(r.passed for r in results)


def test_the_runners_use_the_direct_socket_and_its_folder_is_gone(monkeypatch):
    monkeypatch.delenv(DIRECT_SOCKET_ENV, raising=False)
    with make_sandbox("docker", size=2) as sb:
        assert sb.transport() == ("direct", "")
        assert [w.direct for w in sb._workers] == [True, True]
        # Connected: the listening socket and its folder are removed, nothing else can connect.
        assert all(w._dir is None and w._listener is None for w in sb._workers)
        assert _passes(sb)


def test_the_attach_stream_when_asked(monkeypatch):
    monkeypatch.setenv(DIRECT_SOCKET_ENV, "0")
    with make_sandbox("docker", size=1) as sb:
        assert sb.transport() == ("attach", f"{DIRECT_SOCKET_ENV}=0")
        assert _passes(sb)


def test_a_runner_that_cannot_reach_the_socket_falls_back_to_the_attach_stream(monkeypatch):
    # The runner takes the uid it is told owns the socket's folder; a wrong one cannot enter
    # it, as a runner cannot whose daemon runs elsewhere or maps uids.
    monkeypatch.delenv(DIRECT_SOCKET_ENV, raising=False)
    real_uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real_uid + 4242)
    with make_sandbox("docker", size=1) as sb:
        monkeypatch.undo()
        kind, why = sb.transport()
        assert kind == "attach" and "no host socket" in why, why
        assert _passes(sb)
        # `codegym sandbox doctor` says so, with the runner's reason.
        line = _transport(sb)
        assert line.startswith("[warn]") and "no host socket" in line, line
