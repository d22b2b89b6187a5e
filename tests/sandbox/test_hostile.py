"""Hostile programs against the real docker backend.

Each case asserts its verdict, then that the next execution in the same single-container pool
is unaffected: the probe program checks that no process of the candidate's uid survives, that
the work dir, /dev/shm and /dev/mqueue are empty, that no System V IPC object is left, that the
work dir has its mode and no extended attribute, and that a normal program still passes.
"""

from __future__ import annotations

import socket
import textwrap
import threading
from collections.abc import Iterator

import pytest

from codegym.sandbox import Job, Limits, Sandbox, TestCase, Verdict, make_sandbox

pytestmark = pytest.mark.docker

PROBE = textwrap.dedent(
    """
    import os
    me = os.getpid()
    others = []
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != me:
            try:
                if os.stat("/proc/" + p).st_uid == os.getuid():
                    others.append(p)
            except FileNotFoundError:
                pass
    left = len(os.listdir("/dev/mqueue")) + len(os.listxattr("."))
    left += sum(len(open(f"/proc/sysvipc/{k}").readlines()) - 1 for k in ("shm", "msg", "sem"))
    left += os.stat(".").st_mode & 0o7777 != 0o755
    total = sum(map(int, input().split()))
    print(len(os.listdir(".")), len(os.listdir("/dev/shm")), len(others), left, total)
    """
)


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    """One container, so the probe surely runs where the hostile program ran."""
    limits = Limits(wall_time_s=2.0, cpu_time_s=1.0, max_output_bytes=1 << 16)
    with make_sandbox("docker", size=1, limits=limits) as sandbox:
        yield sandbox


def run_then_probe(sb: Sandbox, program: str, tests=None, **kw):
    tests = tests if tests is not None else [TestCase.stdio("", "unused")]
    result = sb.run(textwrap.dedent(program), tests, **kw)
    probe = sb.run(PROBE, [TestCase.stdio("2 3", "0 0 0 0 5")])
    assert probe.passed, f"the next execution was affected: {probe.tests[0]}"
    return result


#: Filling hundreds of MiB takes more than a second on a slow VM (page faults), so the
#: memory cases get time enough to reach the memory limit instead of the time limit.
ROOMY = Limits(wall_time_s=15.0, cpu_time_s=8.0)


# ----------------------------------------------------------------------------- time
def test_infinite_loop(sb):
    r = run_then_probe(sb, "while True:\n    pass\n")
    assert r.verdict is Verdict.TIMEOUT


def test_sleep_forever(sb):
    r = run_then_probe(sb, "import time\ntime.sleep(10**6)\n")
    assert r.verdict is Verdict.TIMEOUT
    assert r.tests[0].wall_time_s < 5


def test_sigstop_self(sb):
    r = run_then_probe(sb, "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\nprint(1)\n")
    assert r.verdict is Verdict.TIMEOUT


def test_spinning_threads(sb):
    limits = Limits(wall_time_s=20.0, cpu_time_s=1.0)
    r = run_then_probe(
        sb,
        """
        import threading
        def spin():
            while True:
                pass
        for _ in range(4):
            threading.Thread(target=spin, daemon=True).start()
        spin()
        """,
        limits=limits,
    )
    assert r.verdict is Verdict.TIMEOUT
    # The CPU limit counts every thread: it ends the program long before the wall limit
    # (a loaded machine slows the threads down, hence the roomy wall limit).
    assert r.tests[0].wall_time_s < limits.wall_time_s / 2


def test_spinning_forked_children(sb):
    r = run_then_probe(
        sb,
        """
        import os
        for _ in range(4):
            if os.fork() == 0:
                while True:
                    pass
        os.wait()
        """,
    )
    assert r.verdict is Verdict.TIMEOUT


def test_catching_sigxcpu_and_sigalrm_does_not_dodge_the_limit(sb):
    r = run_then_probe(
        sb,
        """
        import signal
        for s in (signal.SIGXCPU, signal.SIGALRM, signal.SIGTERM, signal.SIGINT):
            signal.signal(s, lambda *a: None)
        while True:
            pass
        """,
    )
    assert r.verdict is Verdict.TIMEOUT


# ----------------------------------------------------------------------------- processes
def test_fork_bomb(sb):
    r = run_then_probe(
        sb,
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """,
    )
    assert r.verdict is Verdict.TIMEOUT


def test_thread_bomb(sb):
    r = run_then_probe(
        sb,
        """
        import threading, time
        threads = []
        while True:
            t = threading.Thread(target=time.sleep, args=(100,))
            t.start()
            threads.append(t)
        """,
    )
    # The RuntimeError ends the main module, then the interpreter waits for its non-daemon
    # threads (sleeping 100 s), as CPython would: a timeout, or memory on the way there.
    assert r.verdict in (Verdict.TIMEOUT, Verdict.MEMORY_LIMIT)


def test_kill_parent(sb):
    r = run_then_probe(sb, "import os\nos.kill(os.getppid(), 9)\n")
    assert r.verdict is Verdict.RUNTIME_ERROR
    assert r.tests[0].exception == "PermissionError"


def test_kill_minus_one(sb):
    r = run_then_probe(sb, "import os\nos.kill(-1, 9)\nprint('survived')\n")
    # On Linux kill(-1) spares the caller; it reaches no process of another uid, so the
    # runner survives (the probe) and the program goes on to print.
    assert r.verdict is Verdict.WRONG_ANSWER
    assert r.tests[0].stdout == "survived\n"


def test_setsid_double_fork_daemon_does_not_outlive_the_run(sb):
    r = run_then_probe(
        sb,
        """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(0.5)
                open("/work/late", "w").write("still here")
                time.sleep(1000)
            os._exit(0)
        print("unused")
        """,
    )
    assert r.passed


DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(120)
    os._exit(0)
print(int(input()) * 2)
"""


def test_setsid_daemon_sequences_against_one_pool(sb):
    """Issue 7's flaky case, many times over: double-forking setsid daemons between programs
    that leave things behind (files, a chmod-ed work dir, System V IPC objects, processes),
    all sent at once to a one-container pool so that each job is already queued in the runner
    while the previous one is cleaned up. Every daemon run must pass."""
    leftovers = [
        "import os\nopen('f', 'w').write('x')\nos.chmod('.', 0)\n",
        "import os\nos.chmod('.', 0o044)\n",
        SYSV_SHM,
        "import os\nfor _ in range(30):\n    if os.fork() == 0:\n        os.setsid()\n"
        "        import time\n        time.sleep(100)\n",
        "import os\nos.kill(-1, 9)\n",
    ]
    jobs = []
    for k in range(30):
        jobs.append(Job(DAEMON, (TestCase.stdio(str(k), str(2 * k)),)))
        jobs.append(Job(leftovers[k % len(leftovers)]))
    jobs.append(Job(PROBE, (TestCase.stdio("2 3", "0 0 0 0 5"),)))
    results = sb.run_batch(jobs)
    daemons = [(r.verdict, r.tests[0].message) for r in results[:-1:2]]
    assert daemons == [(Verdict.PASSED, "")] * 30
    assert results[-1].passed, results[-1].tests[0]


def test_grandchild_holding_the_output_pipe(sb):
    r = run_then_probe(
        sb,
        """
        import subprocess
        subprocess.Popen(["sleep", "100"])
        print("unused")
        """,
    )
    assert r.passed
    assert r.tests[0].wall_time_s < 1.5  # did not wait for the grandchild's pipe to close


def test_zombies(sb):
    r = run_then_probe(
        sb,
        """
        import os
        for _ in range(20):
            if os.fork() == 0:
                os._exit(0)
        print("unused")
        """,
    )
    assert r.passed


def test_setuid_to_root_is_refused(sb):
    r = run_then_probe(sb, "import os\nos.setuid(0)\n")
    assert r.verdict is Verdict.RUNTIME_ERROR
    assert r.tests[0].exception == "PermissionError"


def test_no_inherited_file_descriptors(sb):
    r = run_then_probe(
        sb,
        """
        import os
        open_fds = []
        for fd in range(3, 256):
            try:
                os.fstat(fd)
                open_fds.append(fd)
            except OSError:
                pass
        print(open_fds)
        """,
        [TestCase.stdio("", "[3]")],  # fd 3 is the result pipe, nothing else
    )
    assert r.passed, r.tests[0]


# ----------------------------------------------------------------------------- memory
def test_one_huge_allocation(sb):
    r = run_then_probe(sb, "x = bytearray(10**10)\n")
    assert r.verdict is Verdict.MEMORY_LIMIT


def test_slow_growth_to_the_memory_limit(sb):
    r = run_then_probe(
        sb,
        """
        chunks = []
        while True:
            chunks.append(bytearray(4 * 2**20))
        """,
        limits=ROOMY,
    )
    assert r.verdict is Verdict.MEMORY_LIMIT


def test_memory_spread_over_forked_children(sb):
    r = run_then_probe(
        sb,
        """
        import os, time
        pids = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                b = bytearray(200 * 2**20)  # each under the address-space limit...
                time.sleep(0.5)
                os._exit(0)
            pids.append(pid)
        for p in pids:
            os.waitpid(p, 0)
        print("unused")
        """,
        limits=ROOMY,
    )
    # ...but together over the container's memory cgroup.
    assert r.verdict is Verdict.MEMORY_LIMIT


def test_importing_large_stdlib_modules_passes_under_the_default_memory_limit(sb):
    r = run_then_probe(
        sb,
        """
        import asyncio, email.mime.text, http.client, xml.etree.ElementTree, unittest
        import decimal, json, sqlite3, multiprocessing, concurrent.futures, argparse
        import logging, ssl, csv, datetime, statistics, fractions, hashlib, zlib, pickle
        print("imported")
        """,
        [TestCase.stdio("", "imported")],
        limits=Limits(wall_time_s=5.0, cpu_time_s=5.0),
    )
    assert r.passed, r.tests[0]


# ----------------------------------------------------------------------------- output and files
def test_print_flood(sb):
    r = run_then_probe(sb, "while True:\n    print('x' * 1000)\n")
    assert r.verdict is Verdict.OUTPUT_LIMIT
    assert r.tests[0].truncated
    assert len(r.tests[0].stdout) <= 1 << 16


def test_stderr_flood(sb):
    r = run_then_probe(sb, "import sys\nwhile True:\n    sys.stderr.write('e' * 1000)\n")
    assert r.verdict is Verdict.OUTPUT_LIMIT


def test_one_huge_file(sb):
    r = run_then_probe(sb, "open('big', 'wb').write(b'x' * (100 * 2**20))\n")
    assert r.verdict is Verdict.RUNTIME_ERROR  # the file-size limit (SIGXFSZ) or a full tmpfs


def test_many_small_files(sb):
    r = run_then_probe(
        sb,
        """
        import os
        os.makedirs("d/e", exist_ok=True)
        for i in range(3000):
            open(f"d/e/f{i}", "w").write("x")
        print("unused")
        """,
    )
    assert r.passed


def test_writing_to_the_root_filesystem(sb):
    r = run_then_probe(sb, "open('/etc/evil', 'w').write('x')\n")
    assert r.verdict is Verdict.RUNTIME_ERROR
    assert r.tests[0].exception in ("OSError", "PermissionError")


def test_state_in_dev_shm_is_wiped(sb):
    r = run_then_probe(sb, "open('/dev/shm/left', 'w').write('x')\nprint('unused')\n")
    assert r.passed


def test_chmod_of_the_work_dir_does_not_break_the_next_run(sb):
    r = run_then_probe(
        sb, "import os\nopen('f', 'w').write('x')\nos.chmod('.', 0)\nprint('unused')\n"
    )
    assert r.passed


@pytest.mark.parametrize("mode", ["0o044", "0o500", "0o000"])
def test_empty_work_dir_left_without_permissions(sb, mode):
    # Nothing to delete, but every later program's chdir would fail (exit code 70 once).
    r = run_then_probe(sb, f"import os\nos.chmod('.', {mode})\nprint('unused')\n")
    assert r.passed


def test_extended_attribute_on_the_work_dir_does_not_reach_the_next_run(sb):
    r = run_then_probe(sb, "import os\nos.setxattr('.', 'user.note', b'x')\nprint('unused')\n")
    assert r.passed


SYSV_SHM = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
for _ in range(8):
    segment = libc.shmget(0, 16 << 20, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
    ctypes.memset(libc.shmat(segment, None, 0), 1, 16 << 20)
libc.msgget(0, 0o1600)
libc.semget(0, 1, 0o1600)
print("unused")
"""


def test_system_v_ipc_objects_left_behind(sb):
    # They outlive their creator: 128 MiB of shared memory would stay charged to the
    # container (and carry state to the next program) if the runner did not remove them.
    r = run_then_probe(sb, SYSV_SHM)
    assert r.passed, r.tests[0]


def test_posix_message_queue_left_behind(sb):
    r = run_then_probe(
        sb,
        """
        import ctypes, ctypes.util, os
        rt = ctypes.CDLL(ctypes.util.find_library("rt"), use_errno=True)
        print("unused" if rt.mq_open(b"/left", os.O_CREAT | os.O_RDWR, 0o600, None) >= 0 else "")
        """,
    )
    assert r.passed, r.tests[0]


def test_invalid_utf8_output(sb):
    r = run_then_probe(
        sb, "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe ok\\n')\n", [TestCase.stdio("", "ok")]
    )
    assert r.verdict is Verdict.WRONG_ANSWER
    assert "\ufffd" in r.tests[0].stdout


# ----------------------------------------------------------------------------- stdin
def test_input_with_no_stdin(sb):
    r = run_then_probe(sb, "input()\n")
    assert r.verdict is Verdict.RUNTIME_ERROR
    assert r.tests[0].exception == "EOFError"


def test_huge_stdin(sb):
    data = "7 " * (5 * 2**20)
    r = run_then_probe(
        sb,
        "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n",
        [TestCase.stdio(data, str(7 * 5 * 2**20))],
        limits=Limits(wall_time_s=10.0, cpu_time_s=10.0),
    )
    assert r.passed, r.tests[0]


# ----------------------------------------------------------------------------- crashes
def test_deep_recursion_to_a_crash(sb):
    r = run_then_probe(
        sb,
        "import sys\nsys.setrecursionlimit(10**7)\ndef f(n):\n    return f(n + 1)\nf(0)\n",
        limits=ROOMY,
    )
    assert r.verdict in (Verdict.RUNTIME_ERROR, Verdict.MEMORY_LIMIT)


def test_ctypes_segfault(sb):
    r = run_then_probe(sb, "import ctypes\nctypes.string_at(0)\n")
    assert r.verdict is Verdict.RUNTIME_ERROR
    assert r.tests[0].signal == 11


# ----------------------------------------------------------------------------- isolation
def test_network_access_to_a_host_loopback_listener(sb):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(3)
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        r = run_then_probe(
            sb,
            f"""
            import socket
            socket.create_connection(("127.0.0.1", {port}), timeout=1)
            print("connected")
            """,
        )
    finally:
        thread.join()
        server.close()
    assert r.verdict is Verdict.RUNTIME_ERROR
    assert r.tests[0].exception in ("ConnectionRefusedError", "TimeoutError", "OSError")
    assert not accepted, "the candidate reached the host's loopback"


def test_only_loopback_interface(sb):
    r = run_then_probe(
        sb,
        "import socket\nprint(sorted(name for _, name in socket.if_nameindex()))\n",
        [TestCase.stdio("", "['lo']")],
    )
    assert r.passed, r.tests[0]


def test_secrets_are_not_readable(sb):
    r = run_then_probe(
        sb,
        """
        import os
        readable = []
        runner = os.getppid()
        for path in ("/proc/1/environ", f"/proc/{runner}/environ", f"/proc/{runner}/mem",
                     "/etc/shadow", "/root", "/var/run/docker.sock", "/work/main/README.md"):
            try:
                if os.path.isdir(path):
                    os.listdir(path)
                else:
                    open(path, "rb").read(1)
                readable.append(path)
            except OSError:
                pass
        print(readable, sorted(os.environ))
        """,
        [
            TestCase.stdio(
                "",
                "[] ['HOME', 'LANG', 'PATH', 'PYTHONDONTWRITEBYTECODE', "
                "'PYTHONIOENCODING', 'TMPDIR']",
            )
        ],
    )
    assert r.passed, r.tests[0]


def test_the_host_socket_is_out_of_reach(sb):
    # The runner's direct socket to the host: its folder, mounted at /run/codegym, is private
    # to the host's uid, and the socket is unlinked once the runner has connected.
    r = run_then_probe(
        sb,
        """
        import os, socket
        found = []
        try:
            found += os.listdir("/run/codegym")
        except OSError as e:
            found.append(type(e).__name__)
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect("/run/codegym/runner.sock")
            found.append("connected")
        except OSError as e:
            found.append(type(e).__name__)
        print(found)
        """,
        [TestCase.stdio("", "['PermissionError', 'PermissionError']")],
    )
    assert r.passed, r.tests[0]


def test_etc_passwd_is_the_images_own(sb):
    r = run_then_probe(sb, "print(open('/etc/passwd').read())\n", [TestCase.stdio("", None)])
    assert r.passed
    assert "nobody" in r.tests[0].stdout


def test_sitecustomize_left_behind_does_not_run_next_time(sb):
    sb.run("open('sitecustomize.py', 'w').write('print(\"HACKED\")')\n")
    r = sb.run(
        "import subprocess, sys\nprint(subprocess.run([sys.executable, '-c', 'print(1)'],"
        " capture_output=True, text=True).stdout)\n",
        [TestCase.stdio("", "1")],
    )
    assert r.passed, r.tests[0]


def test_file_shadowing_a_stdlib_module_does_not_leak(sb):
    sb.run("open('string.py', 'w').write('ascii_lowercase = \"HACKED\"')\n")
    r = sb.run("import string\nprint(string.ascii_lowercase[:3])\n", [TestCase.stdio("", "abc")])
    assert r.passed, r.tests[0]


def test_creating_files_by_the_hundred_thousand_is_bounded(sb):
    r = run_then_probe(
        sb,
        """
        import os
        n = 0
        try:
            while True:
                open(f"f{n}", "w").close()
                n += 1
        except OSError as e:
            print(n < 20000, e.errno)
        """,
        [TestCase.stdio("", "True 28")],  # ENOSPC: out of inodes
        limits=ROOMY,
    )
    assert r.passed, r.tests[0]
