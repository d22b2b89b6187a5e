"""The ray backend on a Ray instance this module starts on loopback, with real docker pools.

One instance and one two-actor sandbox serve the whole module (Ray takes seconds to start on
two cores). The test that kills an actor runs after the ones that need both.
"""

from __future__ import annotations

import pickle
import sys
import textwrap
import time
from collections.abc import Iterator

import gymnasium as gym
import pytest

import codegym  # noqa: F401  (registers the environments)
from codegym.errors import UsageError
from codegym.sandbox import Job, Limits, SandboxError, TestCase, Verdict, make_sandbox
from codegym.sandbox.ray import RaySandbox
from codegym.tasks import load_tasks

LIMITS = Limits(wall_time_s=2.0, cpu_time_s=1.0, memory_mb=256, max_output_bytes=1 << 16)


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    ray = pytest.importorskip("ray")
    from codegym.sandbox.ray import start_local_ray

    address = start_local_ray(num_cpus=2)
    try:
        yield address
    finally:
        ray.shutdown()
        from codegym.sandbox.docker import remove_stale_containers

        remove_stale_containers()  # what killed actors left, if their replacements did not


@pytest.fixture(scope="module")
def sb(ray_address: str) -> Iterator[RaySandbox]:
    """Two actors with one container each, on this machine's one node."""
    sandbox = make_sandbox("ray", actors=2, per_actor=1, limits=LIMITS)
    assert isinstance(sandbox, RaySandbox)
    try:
        yield sandbox
    finally:
        sandbox.close()


def square_job(i: int) -> Job:
    """A correct stdin/stdout program whose expected output names its place in the batch."""
    return Job("n = int(input())\nprint(n * n)\n", (TestCase.stdio(str(i), str(i * i)),))


#: Hostile programs from test_hostile.py, each with the verdict it must get.
HOSTILE = {
    "while True:\n    pass\n": Verdict.TIMEOUT,
    textwrap.dedent(
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """
    ): Verdict.TIMEOUT,
    "x = bytearray(10**10)\n": Verdict.MEMORY_LIMIT,
    "while True:\n    print('x' * 1000)\n": Verdict.OUTPUT_LIMIT,
    "import os\nos.kill(os.getppid(), 9)\n": Verdict.RUNTIME_ERROR,
    "def broken(:\n": Verdict.SYNTAX_ERROR,
    "print('certainly not the answer')\n": Verdict.WRONG_ANSWER,
}


@pytest.mark.docker
def test_a_private_instance_listens_on_loopback_only(ray_address: str) -> None:
    import psutil

    assert ray_address.startswith("127.0.0.1:")
    ours = {p.pid for p in psutil.Process().children(recursive=True)}
    listening = [
        c
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in ours
    ]
    assert listening, "found none of Ray's servers"
    for c in listening:
        assert c.laddr.ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1"), c


@pytest.mark.docker
def test_two_actors_run_a_mixed_batch_in_order(sb: RaySandbox) -> None:
    actors = sb.describe()
    assert len(actors) == 2 and {a["node_ip"] for a in actors} == {"127.0.0.1"}
    assert sb.size == 2
    jobs: list[Job] = []
    expected: list[Verdict] = []
    for k, (program, verdict) in enumerate(HOSTILE.items()):
        for i in range(4):
            jobs.append(square_job(10 * k + i))
            expected.append(Verdict.PASSED)
        jobs.append(Job(program, (TestCase.stdio("", "unused"),)))
        expected.append(verdict)
    jobs.append(
        Job("def f(a, b):\n    return a + b\n", (TestCase.call([2, 3], 5),), entry_point="f")
    )
    expected.append(Verdict.PASSED)
    results = sb.run_batch(jobs)
    assert [r.verdict for r in results] == expected
    for job, result in zip(jobs, results, strict=True):
        if result.passed and job.tests[0].output is not None:
            assert result.tests[0].stdout.strip() == job.tests[0].output
        assert result.backend == "ray"
    kill_parent = jobs.index(next(j for j in jobs if "getppid" in j.program))
    assert results[kill_parent].tests[0].exception == "PermissionError"


@pytest.mark.docker
def test_submit_returns_futures(sb: RaySandbox) -> None:
    futures = [sb.submit(square_job(i)) for i in range(6)]
    assert [f.result(timeout=60).tests[0].stdout for f in futures] == [
        f"{i * i}\n" for i in range(6)
    ]


@pytest.mark.docker
def test_pickled_it_becomes_a_sandbox_on_the_same_cluster(sb: RaySandbox) -> None:
    copy = pickle.loads(pickle.dumps(sb))
    try:
        assert copy is not sb
        assert copy.config() == sb.config()
        assert {a["name"] for a in copy.describe()}.isdisjoint(a["name"] for a in sb.describe())
        assert copy.run("print(6 * 7)", [{"input": "", "output": "42"}]).passed
    finally:
        copy.close()


@pytest.mark.docker
def test_an_actor_killed_mid_batch_loses_no_result(sb: RaySandbox) -> None:
    import ray

    jobs = [
        Job(f"import time\ntime.sleep(0.05)\nprint({i})\n", (TestCase.stdio("", str(i)),))
        for i in range(60)
    ]
    futures = [sb.submit(job) for job in jobs]
    while not any(f.done() for f in futures):
        time.sleep(0.01)
    victim = sb.describe()[0]
    ray.kill(ray.get_actor(victim["name"], namespace="codegym"))
    results = [f.result(timeout=180) for f in futures]
    assert [r.verdict for r in results] == [Verdict.PASSED] * 60
    assert [r.tests[0].stdout for r in results] == [f"{i}\n" for i in range(60)]
    deadline = time.monotonic() + 120
    while len(sb.describe()) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    names = {a["name"] for a in sb.describe()}
    assert len(names) == 2 and victim["name"] not in names, "the actor was not replaced"


@pytest.mark.docker
def test_a_job_whose_second_actor_dies_too_is_an_infra_error(ray_address: str) -> None:
    import ray

    def kill_the_actor(sandbox: RaySandbox, not_named: str = "") -> str:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            actors = [a for a in sandbox.describe() if a["name"] != not_named]
            if actors:
                time.sleep(0.5)  # its job has arrived and started
                ray.kill(ray.get_actor(actors[0]["name"], namespace="codegym"))
                return str(actors[0]["name"])
            time.sleep(0.2)
        raise AssertionError("no replacement actor started")

    slow = Limits(wall_time_s=30.0, cpu_time_s=1.0, memory_mb=256)
    sandbox = RaySandbox(actors=1, per_actor=1, limits=slow)
    try:
        future = sandbox.submit(Job("import time\ntime.sleep(20)\n"))
        first = kill_the_actor(sandbox)
        kill_the_actor(sandbox, not_named=first)
        result = future.result(timeout=120)
        assert result.verdict is Verdict.INFRA_ERROR
        assert "after a retry on another actor" in result.message
        # The sandbox goes on with a third actor.
        assert sandbox.run("print(1)", [{"input": "", "output": "1"}]).passed
    finally:
        sandbox.close()


@pytest.mark.docker
def test_the_env_works_with_sandbox_ray(ray_address: str) -> None:
    task = load_tasks("toy", n=1, seed=0)[0]
    env = gym.make("codegym/CodeCompletion-v0", tasks=[task], sandbox="ray")
    try:
        obs, _ = env.reset(seed=0, options={"stage": -1})
        solution = task.canonical_solutions[0][len(obs["prefix"]) :]
        _, reward, terminated, _, info = env.step(solution)
        assert (reward, terminated, info["verdict"]) == (1.0, True, "passed")
        env.reset(seed=0, options={"stage": -1})
        _, reward, _, _, info = env.step("def broken(:\n")
        assert (reward, info["verdict"]) == (-1.0, "syntax_error")
    finally:
        env.close()


@pytest.mark.docker
def test_an_async_vector_env_forks_with_it(sb: RaySandbox) -> None:
    """Forked workers cannot use the parent's Ray connection: each gets a relay."""
    tasks = load_tasks("toy", n=2, seed=0)
    solutions = {t.task_id: t.canonical_solutions[0] for t in tasks}
    envs = gym.make_vec(
        "codegym/CodeCompletion-v0",
        num_envs=2,
        vectorization_mode="async",
        tasks=tasks,
        sandbox=sb,
    )
    try:
        obs, info = envs.reset(seed=0, options={"stage": -1})
        actions = [solutions[info["task_id"][i]][len(obs["prefix"][i]) :] for i in range(2)]
        _, rewards, _, _, info = envs.step(actions)
        assert list(rewards) == [1.0, 1.0] and list(info["verdict"]) == ["passed"] * 2
    finally:
        envs.close()


def test_without_ray_it_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(SandboxError, match=r"pip install 'codegym\[ray\]'"):
        make_sandbox("ray")


@pytest.mark.parametrize(
    "kwargs",
    [{"actors": 0}, {"per_actor": "2"}, {"address": "nowhere"}, {"actor_cpus": -1}],
)
def test_malformed_arguments_are_usage_errors(kwargs: dict) -> None:
    with pytest.raises(UsageError, match="ray sandbox"):
        make_sandbox("ray", **kwargs)
