"""The openai: policy against a real chat-completions server on 127.0.0.1 (scripted answers,
429 with Retry-After, 500s, a server that refuses ``n``), with the real docker sandbox."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from codegym.cli import main
from codegym.errors import UsageError
from codegym.eval import OpenAIPolicy, PolicyError, evaluate
from codegym.tasks.jsonl import write_jsonl
from tests.eval import scripted

pytest.importorskip("openai")


@dataclass
class Seen:
    """One request the server received."""

    at: float
    status: int
    n: int
    body: str
    retry: str | None
    auth: str | None


@dataclass
class ChatServer:
    """A chat-completions server: answers with :func:`scripted.respond`.

    ``faults`` maps a request number (from 1) to the ``(status, headers)`` it gets instead;
    ``accept_n`` False refuses ``n > 1`` with a 400 as some servers do; ``delay`` sleeps
    before answering; ``models`` is what ``GET /models`` lists.
    """

    faults: dict[int, tuple[int, dict[str, str]]] = field(default_factory=dict)
    accept_n: bool = True
    delay: float = 0.0
    models: tuple[str, ...] = ("scripted",)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the timeout test)

            def do_GET(self) -> None:
                data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"}
                        for m in server.models]  # fmt: skip
                self._send(200, {"object": "list", "data": data})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                n = int(body.get("n") or 1)
                with server.lock:
                    number = len(server.seen) + 1
                    status = server.faults.get(number, (200, {}))[0]
                    if status == 200 and n > 1 and not server.accept_n:
                        status = 400
                    server.seen.append(
                        Seen(time.monotonic(), status, n, json.dumps(body["messages"]),
                             self.headers.get("x-stainless-retry-count"),
                             self.headers.get("authorization"))
                    )  # fmt: skip
                if server.delay:
                    time.sleep(server.delay)
                if status != 200:
                    headers = server.faults.get(number, (0, {}))[1]
                    error = {"message": f"scripted {status}", "type": "test", "code": status}
                    self._send(status, {"error": error}, headers)
                    return
                text = scripted.respond(body["messages"])
                choices = [
                    {"index": i, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}
                    for i in range(n)
                ]  # fmt: skip
                self._send(200, {
                    "id": f"chatcmpl-{number}", "object": "chat.completion", "created": 0,
                    "model": body["model"], "choices": choices,
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })  # fmt: skip

        return Handler


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start ChatServers on 127.0.0.1; yields a function returning (server, base_url)."""
    started: list[ThreadingHTTPServer] = []

    def start(chat: ChatServer) -> tuple[ChatServer, str]:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), chat.handler())
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        return chat, f"http://127.0.0.1:{httpd.server_address[1]}/v1"

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def _retry_gap(chat: ChatServer, status: int) -> float:
    """Seconds between the request that got ``status`` and its retry (same body)."""
    i = next(i for i, s in enumerate(chat.seen) if s.status == status)
    retry = next(s for s in chat.seen[i + 1 :] if s.body == chat.seen[i].body)
    assert retry.retry is not None and int(retry.retry) >= 1  # the SDK marks its retries
    return retry.at - chat.seen[i].at


@pytest.mark.slow
@pytest.mark.docker
def test_single_mode_through_a_flaky_server(
    serve: Any, docker_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    chat, url = serve(ChatServer(faults={1: (429, {"Retry-After": "1"}), 2: (500, {})}))
    policy = OpenAIPolicy(url, concurrency=1)  # no model given: the only one served
    assert policy.model == "scripted"
    out = tmp_path / "r.jsonl"
    report = evaluate(policy, scripted.TASKS, n=2, k=(1, 2), sandbox=docker_sandbox, out=out,
                      progress=False)  # fmt: skip
    assert report.metrics == {"pass@1": pytest.approx(2 / 6), "pass@2": pytest.approx(2 / 6)}
    assert report.verdicts == {"passed": 4, "runtime_error": 4, "wrong_answer": 4}
    statuses = [s.status for s in chat.seen]
    assert statuses[:2] == [429, 500] and statuses[2:] == [200] * 6  # one n=2 request a task
    assert all(s.n == 2 for s in chat.seen) and policy.n_supported
    assert _retry_gap(chat, 429) >= 1.0  # Retry-After honoured
    assert {s.auth for s in chat.seen} == {"Bearer sk-test"}
    records = [json.loads(x) for x in out.read_text().splitlines()[1:]]
    assert len(records) == 12 and all(r["generate_s"] > 0 for r in records)


@pytest.mark.slow
@pytest.mark.docker
def test_multi_mode_cli_with_a_server_that_refuses_n(
    serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    chat, url = serve(ChatServer(faults={3: (503, {}), 5: (429, {"Retry-After": "1"})},
                                 accept_n=False))  # fmt: skip
    tasks = tmp_path / "tasks.jsonl"
    write_jsonl(scripted.TASKS, tasks)
    report_file = tmp_path / "report.json"
    status = main(["eval", "--policy", f"openai:{url}", "--model", "scripted", "--tasks",
                   str(tasks), "--mode", "multi", "--n", "2", "--k", "1,2", "--sandbox",
                   "docker", "--report", str(report_file), "--no-progress",
                   "--concurrency", "3"])  # fmt: skip
    assert status == 0
    printed = capsys.readouterr().out
    assert "1@3" in printed and "1@1" in printed
    assert report_file.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(report_file.read_text())
    assert report["1@3"] == pytest.approx(4 / 6) and report["1@1"] == pytest.approx(2 / 6)
    assert report["2@6"] == pytest.approx(4 / 6) and report["2@2"] == pytest.approx(2 / 6)
    assert report["tasks"] == 6 and report["n"] == 2
    # 2 tasks x 2 rollouts x 1 turn, 2 x 2 x 2 turns, 2 x 2 x 3 turns
    assert report["mean_turns"] == pytest.approx((4 + 8 + 12) / 12)
    assert sum(report["verdicts"].values()) == 24
    n_refused = [s for s in chat.seen if s.status == 400]
    assert n_refused and all(s.n == 2 for s in n_refused)
    answered = [s for s in chat.seen if s.status == 200]
    assert len(answered) == 24 and all(s.n == 1 for s in answered)  # one request per turn
    assert {s.auth for s in chat.seen} == {"Bearer EMPTY"}  # a dummy key for local servers
    assert _retry_gap(chat, 429) >= 1.0
    assert any(s.status == 503 for s in chat.seen)


def test_retries_run_out_into_a_policy_error(
    serve: Any, process_sandbox: Any, tmp_path: Path
) -> None:
    chat, url = serve(ChatServer(faults={i: (500, {}) for i in range(1, 100)}))
    policy = OpenAIPolicy(url, "scripted", max_retries=1)
    out = tmp_path / "r.jsonl"
    with pytest.raises(PolicyError, match="failed after 1 retries"):
        evaluate(policy, scripted.TASKS[:1], sandbox=process_sandbox, out=out, progress=False)
    assert len(chat.seen) == 2  # the request and its one retry
    assert out.read_text().count("\n") == 1  # the header; nothing was lost, nothing invented


def test_a_slow_server_times_out(serve: Any) -> None:
    _chat, url = serve(ChatServer(delay=2.0))
    policy = OpenAIPolicy(url, "scripted", timeout_s=0.3, max_retries=0)
    from codegym.eval import GenerationParams, Request

    start = time.monotonic()
    with pytest.raises(PolicyError, match="timed out"):
        question = [{"role": "user", "content": scripted.TASKS[0].prompt}]
        list(policy.generate([Request(question)], GenerationParams()))
    assert time.monotonic() - start < 1.5


def test_model_must_be_named_when_the_server_serves_several(serve: Any) -> None:
    _chat, url = serve(ChatServer(models=("a", "b")))
    with pytest.raises(UsageError, match=r"serves 2 models .*pass --model NAME"):
        OpenAIPolicy(url)
    with pytest.raises(UsageError, match="must start with http"):
        OpenAIPolicy("127.0.0.1:8000/v1", "m")
