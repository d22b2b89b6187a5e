"""Behaviour of the sandbox API, on both backends (docker marked; process runs anywhere)."""

from __future__ import annotations

import threading
import time

import pytest

from codegym.sandbox import Job, Limits, Sandbox, SandboxError, TestCase, Verdict, make_sandbox

BACKENDS = [pytest.param("docker_sandbox", marks=pytest.mark.docker), "process_sandbox"]


@pytest.fixture(params=BACKENDS)
def sb(request) -> Sandbox:
    return request.getfixturevalue(request.param)


def test_stdio_verdicts(sb):
    program = "a, b = map(int, input().split())\nprint(a + b if a >= 0 else a - b)\n"
    r = sb.run(program, [{"input": "1 2", "output": "3"}, {"input": "-1 2", "output": "1"}])
    assert [t.verdict for t in r.tests] == [Verdict.PASSED, Verdict.WRONG_ANSWER]
    assert r.verdict is Verdict.WRONG_ANSWER and not r.passed
    assert r.pass_ratio == 0.5
    assert r.tests[1].message == "expected '1', got '-3\\n'"


def test_call_tests_and_executed_lines(sb):
    program = (
        "def sign(x):\n    if x > 0:\n        return 1\n    if x < 0:\n        return -1\n"
        "    return 0\n"
    )
    r = sb.run(
        program,
        [TestCase.call([5], 1), TestCase.call([-5], -1)],
        entry_point="sign",
        trace_lines=True,
    )
    assert r.passed
    assert r.executed_lines == (1, 2, 3, 4, 5)  # line 6 (x == 0) never ran
    assert r.tests[0].actual == 1


def test_lines_of_a_stdio_program(sb):
    program = "n = int(input())\nif n:\n    print('yes')\nelse:\n    print('no')\n"
    r = sb.run(program, [TestCase.stdio("1", "yes")], trace_lines=True)
    assert r.passed and r.executed_lines == (1, 2, 3)


def test_solution_class_entry_point(sb):
    program = "class Solution:\n    def twice(self, x):\n        return 2 * x\n"
    assert sb.run(program, [TestCase.call([4], 8)], entry_point="twice").passed


def test_missing_entry_point_is_a_runtime_error(sb):
    r = sb.run("def g(x):\n    return x\n", [TestCase.call([1], 1)], entry_point="f")
    assert r.verdict is Verdict.RUNTIME_ERROR
    assert r.tests[0].exception == "NameError"


def test_exception_carries_the_candidates_traceback(sb):
    r = sb.run("def f(x):\n    return 1 // x\n", [TestCase.call([0], 1)], entry_point="f")
    t = r.tests[0]
    assert t.verdict is Verdict.RUNTIME_ERROR and t.exception == "ZeroDivisionError"
    assert 'File "solution.py", line 2, in f' in t.traceback
    assert "return 1 // x" in t.traceback
    assert "runner" not in t.traceback  # only the candidate's frames


def test_a_crash_in_one_call_test_does_not_lose_the_others(sb):
    program = "import os\ndef f(x):\n    if x == 2:\n        os._exit(3)\n    return x\n"
    tests = [TestCase.call([i], i) for i in range(4)]
    r = sb.run(program, tests, entry_point="f")
    assert [t.verdict for t in r.tests] == [
        Verdict.PASSED,
        Verdict.PASSED,
        Verdict.RUNTIME_ERROR,
        Verdict.PASSED,
    ]


def test_a_timeout_in_one_call_test_does_not_lose_the_others(sb):
    program = "def f(x):\n    while x == 1:\n        pass\n    return x\n"
    r = sb.run(
        program,
        [TestCase.call([i], i) for i in range(3)],
        entry_point="f",
        limits=Limits(wall_time_s=1.0, cpu_time_s=0.5),
    )
    assert [t.verdict for t in r.tests] == [Verdict.PASSED, Verdict.TIMEOUT, Verdict.PASSED]


def test_stop_on_failure_skips_the_rest(sb):
    r = sb.run("raise ValueError('no')\n", [TestCase.stdio("", "1")] * 3, stop_on_failure=True)
    assert [t.verdict for t in r.tests] == [Verdict.RUNTIME_ERROR, Verdict.SKIPPED, Verdict.SKIPPED]
    assert r.verdict is Verdict.RUNTIME_ERROR


def test_syntax_error(sb):
    r = sb.run("def f(:\n", [TestCase.stdio("", "")])
    assert r.verdict is Verdict.SYNTAX_ERROR
    assert "SyntaxError" in r.message and r.tests[0].verdict is Verdict.SKIPPED


def test_no_tests_means_exit_status_only(sb):
    assert sb.run("x = 1\n").verdict is Verdict.PASSED
    assert sb.run("raise SystemExit(2)\n").verdict is Verdict.RUNTIME_ERROR


def test_assert_style_tests(sb):
    program = "def f(x):\n    return x + 1\n"
    ok = sb.run(program, [TestCase.assertion("assert f(1) == 2")], entry_point="f")
    bad = sb.run(program, [TestCase.assertion("assert f(1) == 3")], entry_point="f")
    assert ok.passed and bad.verdict is Verdict.WRONG_ANSWER


def test_returned_values_of_every_plain_type(sb):
    program = "def f():\n    return [(1, 2), {3}, {'a': 1.5}, None, True, 'x', float('inf')]\n"
    r = sb.run(
        program,
        [TestCase.call([], [[1, 2], [3], {"a": 1.5}, None, True, "x", float("inf")])],
        entry_point="f",
    )
    # A set is only equal to a set; the expected JSON list [3] is not.
    assert r.verdict is Verdict.WRONG_ANSWER
    assert r.tests[0].actual[1] == frozenset({3})


def test_run_batch_keeps_input_order(sb):
    jobs = [Job(f"print({i})", ({"input": "", "output": str(i)},)) for i in range(30)]
    results = sb.run_batch(jobs)
    assert all(r.passed for r in results)
    assert [r.tests[0].stdout.strip() for r in results] == [str(i) for i in range(30)]


def test_runs_in_parallel(sb):
    # Each job reports when it slept; with one job per worker, the intervals overlap.
    program = "import time\nstart = time.time()\ntime.sleep(0.5)\nprint(start, time.time())\n"
    jobs = [
        Job(program, ({"input": "", "output": None},), limits=Limits(wall_time_s=5.0))
        for _ in range(sb.size)
    ]
    spans = [tuple(map(float, r.tests[0].stdout.split())) for r in sb.run_batch(jobs)]
    assert max(s for s, _ in spans) < min(e for _, e in spans)


def test_submit_from_several_threads(sb):
    results: list = []

    def worker(k: int) -> None:
        results.extend(
            sb.run_batch(
                [
                    Job(f"print({k * 10 + i})", ({"input": "", "output": str(k * 10 + i)},))
                    for i in range(5)
                ]
            )
        )

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20 and all(r.passed for r in results)


def test_unicode_round_trip(sb):
    r = sb.run("print(input()[::-1])\n", [TestCase.stdio("héllo ✓ 日本", "本日 ✓ olléh")])
    assert r.passed


def test_lone_surrogates_in_a_program_are_a_syntax_error(sb):
    assert sb.run("print('\ud800')\n").verdict is Verdict.SYNTAX_ERROR


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown sandbox backend"):
        make_sandbox("vm")


def test_closed_sandbox_refuses_jobs(process_sandbox):
    with pytest.warns(RuntimeWarning, match="does NOT isolate"):
        sb = make_sandbox("process", size=1)
    sb.close()
    sb.close()  # idempotent
    with pytest.raises(SandboxError, match="closed"):
        sb.run("print(1)")


@pytest.mark.docker
def test_a_container_killed_mid_job_is_replaced_and_the_job_retried(docker_sandbox):
    import docker

    sb = make_sandbox("docker", size=1)
    try:
        future = sb.submit(
            Job(
                "import time\ntime.sleep(1.0)\nprint('done')\n",
                ({"input": "", "output": "done"},),
                limits=Limits(wall_time_s=5.0),
            )
        )
        time.sleep(0.4)
        client = docker.from_env()
        name = sb._workers[0].name  # the container running the job
        client.containers.get(name).kill()
        client.close()
        result = future.result(timeout=60)
        assert result.passed, result  # retried once in a fresh container
        assert sb._workers[0].name != name
        assert sb.run("print(2)", [{"input": "", "output": "2"}]).passed
    finally:
        sb.close()


@pytest.mark.docker
def test_no_container_outlives_its_sandbox():
    import docker

    from codegym.sandbox.docker import LABEL

    sb = make_sandbox("docker", size=2)
    names = [w.name for w in sb._workers]
    sb.close()
    client = docker.from_env()
    try:
        left = [c.name for c in client.containers.list(all=True, filters={"label": LABEL})]
    finally:
        client.close()
    assert not set(names) & set(left)


def test_deepcopy_shares_the_pool_and_pickling_recreates_it(process_sandbox):
    import copy
    import pickle

    assert copy.deepcopy(process_sandbox) is process_sandbox
    clone = pickle.loads(pickle.dumps(process_sandbox))
    try:
        assert clone is not process_sandbox
        assert (clone.name, clone.size, clone.limits) == (
            process_sandbox.name,
            process_sandbox.size,
            process_sandbox.limits,
        )
        assert clone.run("print(1)", [{"input": "", "output": "1"}]).passed
    finally:
        clone.close()


def test_subclasses_of_builtin_types_are_returned_as_plain_data(sb):
    program = (
        "from collections import Counter, namedtuple, OrderedDict\n"
        "P = namedtuple('P', 'x y')\n"
        "def f():\n    return [Counter('aab'), P(1, 2), OrderedDict(a=True)]\n"
    )
    r = sb.run(
        program, [TestCase.call([], [{"a": 2, "b": 1}, [1, 2], {"a": True}])], entry_point="f"
    )
    assert r.passed, r.tests[0]


def test_stdio_like_a_real_interpreter(sb):
    # The competitive-programming fast-I/O template, exit(), quit() and stream attributes.
    program = (
        "import os, io, sys\n"
        "data = io.BytesIO(os.read(0, os.fstat(0).st_size)).read().split()\n"
        "print(sum(map(int, data)), sys.stdin.mode, sys.stdout.mode, sys.stdin.name)\n"
        "exit(0)\n"
    )
    r = sb.run(program, [TestCase.stdio("1 2 3\n", "6 r w <stdin>")])
    assert r.passed, r.tests[0]
    assert sb.run("quit()\n").passed


def test_failing_assert_shows_its_own_line(sb):
    program = "def f(x):\n    return x\n"
    tests = [TestCase.assertion("assert f(1) == 1"), TestCase.assertion("x = 0\nassert f(2) == 3")]
    for _ in range(2):  # the second time the tests come from the runner's compile cache
        r = sb.run(program, tests, entry_point="f")
        assert [t.verdict for t in r.tests] == [Verdict.PASSED, Verdict.WRONG_ANSWER]
        assert "assert f(2) == 3" in r.tests[1].traceback


def test_closing_a_process_sandbox_kills_a_running_candidate(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sb = make_sandbox("process", size=1)
    pid_file = tmp_path / "pid"
    program = (  # a grandchild in a session of its own, so not in the runner's group
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    future = sb.submit(Job(program, limits=Limits(wall_time_s=60.0, cpu_time_s=60.0)))
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.02)
    pid = int(pid_file.read_text())
    sb.close()
    with pytest.raises(SandboxError, match="closed"):
        future.result(timeout=5)  # a job in flight fails, it does not hang
    time.sleep(0.2)
    try:  # gone, or a zombie waiting for init to reap it
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z", "X")


def test_a_forked_process_gets_a_pool_of_its_own(sb):
    import os

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # e.g. an async vector env's worker, which inherits the sandbox object
        try:
            ok = sb.run("print(7)", [{"input": "", "output": "7"}]).passed
            os.write(w, b"1" if ok else b"0")
            sb.close()
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1"
    os.close(r)
    # The child's close() left the parent's pool alone.
    assert sb.run("print(8)", [{"input": "", "output": "8"}]).passed


def test_max_timeouts_skips_the_rest(sb):
    limits = Limits(wall_time_s=1.0, cpu_time_s=0.3)
    loop = "while True:\n    pass\n"
    r = sb.submit(Job(loop, (TestCase.stdio("", "1"),) * 4, limits=limits, max_timeouts=1)).result()
    assert [t.verdict for t in r.tests] == [Verdict.TIMEOUT] + [Verdict.SKIPPED] * 3
    assert r.verdict is Verdict.TIMEOUT
    program = "def f(x):\n    while x == 1:\n        pass\n    return x\n"
    tests = tuple(TestCase.call([i], i) for i in (0, 1, 2, 1, 3))
    r = sb.submit(Job(program, tests, "f", limits=limits, max_timeouts=2)).result()
    assert [t.verdict for t in r.tests] == [
        Verdict.PASSED,
        Verdict.TIMEOUT,
        Verdict.PASSED,
        Verdict.TIMEOUT,
        Verdict.SKIPPED,
    ]
    with pytest.raises(ValueError, match="max_timeouts"):
        Job(loop, max_timeouts=0)


def test_a_pool_that_cannot_replace_its_last_worker_fails_loudly():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sb = make_sandbox("process", size=1)
    sb.outage_timeout_s = 1.0
    try:

        def cannot_spawn():
            raise OSError("no more processes")

        sb._spawn = cannot_spawn  # the machine refuses new workers from now on
        job = Job("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n")
        start = time.monotonic()
        result = sb.submit(job).result(timeout=30)  # the runner dies and cannot be replaced
        assert time.monotonic() - start >= 1.0  # retried for outage_timeout_s first
        assert result.verdict is Verdict.INFRA_ERROR
        assert "no process sandbox worker is left" in result.message
        assert "no more processes" in result.message
        with pytest.raises(SandboxError, match="no process sandbox worker is left"):
            sb.run("print(1)")
    finally:
        sb.close()


def test_jobs_wait_while_workers_cannot_start_and_run_once_they_can():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sb = make_sandbox("process", size=1)
    try:
        spawn, refuse_until = sb._spawn, time.monotonic() + 2.0

        def spawn_after_a_while():
            if time.monotonic() < refuse_until:
                raise OSError("resource temporarily unavailable")
            return spawn()

        sb._spawn = spawn_after_a_while
        killer = Job("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n")
        first = sb.submit(killer)  # kills its runner: the pool has no worker for 2 s
        waiting = sb.submit(Job("print(6 * 7)", (TestCase.stdio("", "42"),)))
        time.sleep(1.0)
        assert not waiting.done()
        assert waiting.result(timeout=30).passed  # ran as soon as a worker could start
        # The killer was retried once in the new worker, which it killed too.
        assert first.result(timeout=30).verdict is Verdict.INFRA_ERROR
        assert sb.run("print(1)", [TestCase.stdio("", "1")]).passed
    finally:
        sb.close()


def test_a_sandbox_left_open_is_closed_at_exit(tmp_path):
    import subprocess
    import sys

    script = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "from codegym.sandbox import make_sandbox\n"
        "sb = make_sandbox('process', size=1)\n"
        "print(sb._workers[0].proc.pid, flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Error" not in out.stderr, out.stderr
    runner_pid = int(out.stdout)
    try:
        state = open(f"/proc/{runner_pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z", "X")


@pytest.mark.docker
def test_a_hung_container_is_replaced_and_the_job_retried(monkeypatch):
    import docker

    from codegym.sandbox import base

    monkeypatch.setattr(base, "_HANG_SLACK_S", 1.0)  # give up on a silent runner sooner
    sb = make_sandbox("docker", size=1)
    try:
        name = sb._workers[0].name
        client = docker.from_env()
        client.containers.get(name).pause()  # the runner stops answering
        client.close()
        job = Job(
            "print('done')\n", ({"input": "", "output": "done"},), limits=Limits(wall_time_s=1.0)
        )
        result = sb.submit(job).result(timeout=60)
        assert result.passed, result
        assert sb._workers[0].name != name
    finally:
        sb.close()
