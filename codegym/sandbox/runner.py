"""The in-sandbox runner: a warm Python that forks a child per execution.

This file is standard-library only and self-contained: the docker backend passes its source to
``python3 -I -S -c`` inside the container, the process backend runs it as a script. It never
decides a verdict: it reports what happened (exit status, signal, exception, captured output,
returned values) and the host judges, so expected outputs never enter the sandbox.

Protocol (both directions): frames of a 4-byte big-endian length then UTF-8 JSON.
  host -> runner  {"op": "run", "id", "program", "tests": [payload], "entry_point",
                   "limits": {...}, "trace": bool, "stop_on_failure": bool,
                   "max_timeouts": int|None, "nonce": str}
  runner -> host  {"op": "ready", "pid"} once, then {"op": "result", "id", "tests": [record],
                   "compile_error": str|None, "lines": [int], "tainted": bool}

Child set-up, in order: own session, OOM score raised (so the cgroup's OOM killer picks the
candidate, not the runner), rlimits, privileges dropped (container mode: the runner is root
with only SETUID/SETGID/KILL; the candidate runs as an unprivileged uid with no capabilities,
so it can neither signal the runner nor read its /proc entries), clean fds, clean environment.

A stdin/stdout program ends as under ``python3 prog.py``: threads joined, ``atexit`` handlers
run, streams flushed (see ``_finalize``). Call and assert-style tests end with ``os._exit``.

Time limits are enforced here, in the parent, never by a signal handler in the candidate.
After each child ends every candidate process left is killed (``kill(-1)`` in container mode;
in local mode a scan of the runner's descendants, which works because the runner is a child
subreaper; neither when none is left), and what could carry state to the next program is
removed (files, System V IPC objects, the work dir's mode and extended attributes). A runner
that cannot clean up says so (``tainted``) and stops.
"""

import fcntl
import gc
import json
import os
import re
import select
import signal
import struct
import sys
import time

CONTAINER = "container"
LOCAL = "local"
SOLUTION_FILE = "solution.py"
TEST_FILE = "<test %d>"  # one name per test, so tracebacks show the right source
FRAME_HEADER = struct.Struct(">I")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
#: Address space the interpreter needs beyond the program's own data (shared libraries, the
#: runner's pre-imported modules, thread stacks): without it ordinary imports fail.
_AS_HEADROOM_MB = 256
_OOM_CONTROL = "/sys/fs/cgroup/memory/memory.oom_control"
#: See _Watch: when the runner first looks at a running child, and the longest gap between looks.
_FIRST_LOOK_S = 0.005
_MAX_LOOK_S = 0.05
#: Pipe capacity asked for (the unprivileged maximum is 1 MiB), and the size of one read.
_PIPE_SIZE = 1 << 20
_PIPE_READ = 1 << 16
_TEST_CACHE_SIZE = 256
#: How deep a returned value may nest (deeper is refused, as is a value that contains itself).
_MAX_DEPTH = 100
#: Imported once here so every forked child has them warm (the modules programs use most).
#: Every module preloaded makes each fork dearer, so only the ones most programs import
#: (HumanEval imports ``typing`` in most prompts) are here. Never ``threading``: once it is
#: imported, CPython's after-fork hooks double the cost of every fork (measured 0.85 ms vs
#: 1.6 ms of CPU per fork in the sandbox image).
_WARM_MODULES = (
    "collections",
    "itertools",
    "functools",
    "math",
    "re",
    "heapq",
    "bisect",
    "string",
    "typing",
    "copy",
    "io",
    "linecache",
    "resource",
)


#: Taken once, before any candidate code runs: the child writes its reports through these, not
#: through attributes of modules the candidate can patch (``json.dumps = ...`` in the
#: candidate's code would otherwise forge a returned value).
_write = os.write
_hard_exit = os._exit
_exec = exec
_perf_counter = time.perf_counter
_process_time = time.process_time


def _make_record_encoder():
    try:
        from _json import encode_basestring_ascii, make_encoder
    except ImportError:  # no C accelerator: the pure-Python encoder, bound now
        return json.JSONEncoder(separators=(",", ":")).encode

    def refuse(value):
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    encode = make_encoder(None, refuse, encode_basestring_ascii, None, ":", ",", False, False, True)
    return lambda record: "".join(encode(record, 0))


_encode_record = _make_record_encoder()
#: The builtins, and the modules most tests import, as they were when the runner started
#: (taken in ``main``): what assert-style tests see, whatever the candidate patched.
_PRISTINE_BUILTINS: dict = {}
_PRISTINE: dict = {}
_PRISTINE_MODULES = ("math", "re", "collections", "itertools", "functools", "heapq")


# ----------------------------------------------------------------------------- framing
def read_frame(fd):
    """Read one frame from ``fd`` (blocking); ``None`` at end of stream."""
    header = _read_exact(fd, 4)
    if header is None:
        return None
    (size,) = FRAME_HEADER.unpack(header)
    body = _read_exact(fd, size)
    if body is None:
        return None
    return json.loads(body.decode("utf-8"))


def _read_exact(fd, size):
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def encode_frame(message):
    """One protocol frame for ``message`` (the host uses this too)."""
    body = json.dumps(message, ensure_ascii=True).encode("ascii")
    return FRAME_HEADER.pack(len(body)) + body


def write_frame(fd, message):
    """Write one frame to ``fd``."""
    view = memoryview(encode_frame(message))
    while view:
        view = view[os.write(fd, view) :]


# ----------------------------------------------------------------------------- child side
def _compile(source, filename=SOLUTION_FILE):
    """(code object, None) or (None, the compiler's message)."""
    try:
        code = compile(source, filename, "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError) as e:
        return None, f"{type(e).__name__}: {e}"
    _set_source_lines(source, filename)
    return code, None


def _set_source_lines(source, filename):
    """Let tracebacks show ``source``'s lines for ``filename``."""
    import linecache

    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


# The child-side helpers below run after the candidate's code, on what it returned. Each binds
# the builtins it uses as default arguments, taken when the runner starts: a candidate that
# patches ``builtins.isinstance`` (or ``type``, ``exec``...) cannot change how they see its
# values.
def _plain(
    value,
    depth=0,
    *,
    isinstance=isinstance,
    type=type,
    bool=bool,
    int=int,
    float=float,
    str=str,
    list=list,
    tuple=tuple,
    set=set,
    frozenset=frozenset,
    dict=dict,
    repr=repr,
    TypeError=TypeError,
):
    """Encode a returned value as plain JSON data (tags for sets, dicts, non-finite floats).

    Built-in types and their subclasses (``Counter``, ``defaultdict``, namedtuples, ``bool``)
    are converted to plain data here, in the candidate's process; anything else is refused.
    No ``__eq__`` of the candidate's ever matters: the host compares the plain data.
    """
    if depth > _MAX_DEPTH:
        raise TypeError("value nested too deeply")
    if value is None or isinstance(value, bool):
        return None if value is None else bool(value)
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        value = float.__float__(value)
        if value != value or value in (float("inf"), float("-inf")):
            return {"__float__": repr(value)}
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, list):
        return [_plain(v, depth + 1) for v in list.__iter__(value)]
    if isinstance(value, tuple):
        return [_plain(v, depth + 1) for v in tuple.__iter__(value)]
    if isinstance(value, (set, frozenset)):
        items = set.__iter__(value) if isinstance(value, set) else frozenset.__iter__(value)
        return {"__set__": [_plain(v, depth + 1) for v in items]}
    if isinstance(value, dict):
        pairs = dict.items(value)
        return {"__dict__": [[_plain(k, depth + 1), _plain(v, depth + 1)] for k, v in pairs]}
    raise TypeError(f"returned a {type(value).__name__}, which is not plain data")


def _format_exception(exc, files, *, type=type, str=str, BaseException=BaseException):
    """(type name, message, traceback limited to the candidate's own frames).

    The name is all the verdict needs; the message and traceback are best effort, since the
    candidate may have broken what formatting them takes (builtins, ``traceback`` itself).
    """
    try:
        name = str.__str__(type(exc).__name__)
    except BaseException:  # a metaclass with a hostile __name__
        name = "BaseException"
    try:
        message = str(exc)
    except BaseException:  # a hostile __str__
        message = "<unprintable>"
    try:
        import traceback

        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in files]
        lines = ["Traceback (most recent call last):\n"] if frames else []
        lines += traceback.format_list(frames)
        lines += traceback.format_exception_only(type(exc), exc)
        text = "".join(lines)
    except BaseException:
        text = ""
    return name, message[:2000], text[-8000:]


class _Child:
    """Code that runs in the forked child, before and around the candidate."""

    def __init__(self, res_fd, job, code, trace):
        self.res_fd = res_fd
        self.job = job
        self.code = code
        self.lines = set() if trace else None
        self.reported = set()

    def report(self, **record):
        data = (_encode_record(record) + "\n").encode()
        try:
            _write(self.res_fd, data)
        except OSError:
            pass

    def flush_lines(self):
        if self.lines is not None:
            new = self.lines - self.reported
            if new:
                self.reported |= new
                self.report(t="lines", lines=sorted(new))

    def start_tracing(self):
        if self.lines is None:
            return
        lines = self.lines

        def local(frame, event, arg):
            if event == "line":
                lines.add(frame.f_lineno)
            return local

        def on_call(frame, event, arg):
            if frame.f_code.co_filename == SOLUTION_FILE:
                return local
            return None

        sys.settrace(on_call)
        # Imported here, in the child, so that a program that runs ``main`` in a thread is
        # traced too (never in the runner: see _WARM_MODULES).
        import threading

        threading.settrace(on_call)

    def run_stdio(self):
        """Run the program as a script on stdin; report an exception if it raises."""
        code = self.code
        namespace = {
            "__name__": "__main__",
            "__file__": SOLUTION_FILE,
            "__builtins__": __builtins__,
        }
        status = 0
        self.start_tracing()
        try:
            exec(code, namespace)
        except SystemExit as e:
            status = _exit_status(e)
        except BaseException as e:
            self._report_exception(e)
            status = 1
        status = _finalize(status, namespace)
        sys.settrace(None)
        self.flush_lines()
        _hard_exit(status)

    def run_calls(self, start, stop):
        """Run the program once, then tests ``start..stop-1`` (call or assert) in order."""
        code = self.code
        namespace = {
            "__name__": "solution",
            "__file__": SOLUTION_FILE,
            "__builtins__": __builtins__,
        }
        tests = self.job["tests"]
        nonce = self.job.get("nonce", "")
        entry_point = self.job.get("entry_point")
        pristine = _Pristine({m for t in tests[start:stop] for m in t.get("modules", ())})
        indices = list(range(start, stop))
        self.start_tracing()
        try:
            _exec(code, namespace)
            pristine.restore()
            target = _find_entry_point(namespace, entry_point, tests[start:stop])
        except BaseException as e:
            pristine.restore()
            self._report_exception(e, phase="load")
            sys.settrace(None)
            _flush_std(0)
            self.flush_lines()
            _hard_exit(1)
        for i in indices:
            test = tests[i]
            # Before and after each check: what the candidate patched in the modules the test
            # imports is put back.
            pristine.restore()
            self.report(t="start", i=i)
            t0, c0 = _perf_counter(), _process_time()
            record = {"t": "done", "i": i}
            try:
                if test["kind"] == "call":
                    # This child is the only user of these args: no copy needed.
                    value = target(*test["args"])
                    pristine.restore()
                    try:
                        record["value"] = _plain(value)
                    except (TypeError, RecursionError) as e:
                        record["bad_value"] = str(e)
                else:
                    _exec(test["compiled"], pristine.test_namespace(namespace, entry_point))
                    record["nonce"] = nonce
            except BaseException as e:
                pristine.restore()
                name, message, tb = _format_exception(e, (SOLUTION_FILE, TEST_FILE % i))
                record.update(exception=name, message=message, traceback=tb)
            pristine.restore()
            record["wall"] = _perf_counter() - t0
            record["cpu"] = _process_time() - c0
            _flush_std(0)
            self.flush_lines()
            self.report(**record)
        sys.settrace(None)
        _hard_exit(0)

    def _report_exception(self, exc, phase="run"):
        name, message, tb = _format_exception(exc, (SOLUTION_FILE,))
        self.report(t="exception", phase=phase, exception=name, message=message, traceback=tb)


_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(\w[\w.]*)[ \t]+import\b|import[ \t]+([\w., \t]+))", re.M
)


def _imported_modules(source):
    """Modules an assert-style test's code imports (and their parent packages)."""
    names = set()
    for origin, listed in _IMPORT.findall(source):
        for item in [origin] if origin else listed.split(","):
            parts = item.split()
            if parts:
                dotted = parts[0].split(".")
                names.update(".".join(dotted[: k + 1]) for k in range(len(dotted)))
    return tuple(sorted(names))


class _Pristine:
    """What assert-style tests see of the interpreter: builtins and the modules they import as
    they were before the candidate's code ran.

    The test code gets the runner's copy of the builtins dict, taken at start-up, as its
    ``__builtins__``: the candidate's patches to ``builtins`` never reach it, and nothing is
    copied or restored per check (touching every builtin would cost a copy-on-write fault per
    page). The modules the test imports are restored before each check, attribute values and
    deleted entries (names the candidate added are left), with their ``sys.modules`` entries.
    Patches inside classes or function objects (``fractions.Fraction.__eq__ = ...``) are not
    undone.
    """

    def __init__(self, test_modules, *, sorted=sorted, vars=vars, dict=dict):
        """``test_modules``: the runner's own snapshot where it has one, else one taken now,
        importing the module first (the candidate must find it imported, or it could patch
        it before the test's own import)."""
        self.sys_modules = sys.modules
        self.saved = []
        for name in sorted(test_modules):
            if name in _PRISTINE:
                self.saved.append((name, *_PRISTINE[name]))
                continue
            try:
                __import__(name)
                module = sys.modules[name]
            except BaseException:  # missing: the test will fail on its own import
                continue
            self.saved.append((name, module, vars(module), dict(vars(module))))

    def restore(self):
        for name, module, attributes, saved in self.saved:
            attributes.update(saved)
            self.sys_modules[name] = module

    def test_namespace(
        self,
        namespace,
        entry_point,
        *,
        dict=dict,
        callable=callable,
        isinstance=isinstance,
        type=type,
    ):
        """The globals an assert-style test runs in: the program's own (the test may use its
        helpers and classes) with the pristine builtins, no global of the program's shadowing
        a builtin, and the entry point returning plain data only."""
        test_ns = dict(namespace)
        for name in _PRISTINE_BUILTINS.keys() & test_ns.keys():
            if not name.startswith("__") and name != entry_point:
                del test_ns[name]
        test_ns["__builtins__"] = _PRISTINE_BUILTINS
        function = namespace.get(entry_point) if entry_point else None
        if callable(function) and not isinstance(function, type):
            test_ns[entry_point] = _returning_plain_data(function, entry_point, self)
        return test_ns


def _returning_plain_data(function, name, pristine):
    """``function`` as an assert-style test sees it: what it returns is copied into exact
    built-in types, so no ``__eq__`` (or any other method) of the candidate's runs in the
    test's comparisons."""

    def entry_point(*args, **kwargs):
        value = function(*args, **kwargs)
        pristine.restore()
        return _plain_copy(value, name, 0)

    entry_point.__name__ = entry_point.__qualname__ = name
    return entry_point


def _plain_copy(
    value,
    name,
    depth,
    *,
    type=type,
    isinstance=isinstance,
    int=int,
    float=float,
    complex=complex,
    str=str,
    bytes=bytes,
    list=list,
    tuple=tuple,
    set=set,
    frozenset=frozenset,
    dict=dict,
    AssertionError=AssertionError,
):
    """A copy of ``value`` made only of exact built-in types (subclasses become their base).

    Raises:
        AssertionError: the value holds anything else (the test fails: wrong answer).
    """
    kind = type(value)
    if kind in _EXACT_IMMUTABLE:
        return value
    if kind is _MATCH and type(value.string) in (str, bytes):
        # EvalPlus's regex problems return ``re.search(...)`` and test ``is not None``. The
        # type is final and compares by identity; over an exact str nothing of the
        # candidate's runs in its methods.
        return value
    if depth > _MAX_DEPTH:
        raise AssertionError(f"{name} returned a value nested too deeply")
    depth += 1
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, complex):
        return complex.__complex__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes.__bytes__(value)
    if isinstance(value, list):
        return [_plain_copy(v, name, depth) for v in list.__iter__(value)]
    if isinstance(value, tuple):
        return tuple([_plain_copy(v, name, depth) for v in tuple.__iter__(value)])
    if isinstance(value, (set, frozenset)):
        items = set.__iter__(value) if isinstance(value, set) else frozenset.__iter__(value)
        copied = [_plain_copy(v, name, depth) for v in items]
        return set(copied) if isinstance(value, set) else frozenset(copied)
    if isinstance(value, dict):
        pairs = dict.items(value)
        return {_plain_copy(k, name, depth): _plain_copy(v, name, depth) for k, v in pairs}
    raise AssertionError(
        f"{name} returned a {kind.__name__}, which is not plain data (assert-style tests "
        "see only built-in types: None, bool, int, float, complex, str, bytes, range, list, "
        "tuple, set, frozenset, dict, and re.Match)"
    )


_EXACT_IMMUTABLE = frozenset({type(None), bool, int, float, complex, str, bytes, range})
_MATCH = re.Match


def _find_entry_point(namespace, name, tests):
    if not any(t["kind"] == "call" for t in tests):
        return None
    if name in namespace and callable(namespace[name]):
        return namespace[name]
    solution = namespace.get("Solution")
    if isinstance(solution, type) and hasattr(solution, name):
        return getattr(solution(), name)
    raise NameError(f"the program defines no function named {name!r}")


def _exit_status(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int) and type(code) is int:
        return code & 0xFF
    try:
        sys.stderr.write(f"{code}\n")
    except BaseException:
        pass
    return 1


def _flush_std(status, streams=None):
    """Flush the std streams that are still open, as CPython's ``flush_std_files`` does: a
    closed one is skipped (``with sys.stdout as f:`` is fine), a failing one makes the exit
    status 120."""
    for stream in streams or (sys.stdout, sys.stderr):
        try:
            if stream is None or stream.closed:
                continue
        except BaseException:  # no usable ``closed``: CPython skips it too
            continue
        try:
            stream.flush()
        except BaseException:
            status = 120
    return status


def _finalize(status, namespace):
    """What ``Py_FinalizeEx`` does after the main module of ``python3 prog.py`` ended.

    In CPython's order: wait for the non-daemon threads (contest programs run ``main`` in a
    thread for a deeper stack), run the ``atexit`` handlers (fast-I/O templates write their
    buffer there), flush stdout and stderr, put the original streams back in ``sys``,
    release the module's globals (an open file held only there is flushed as it is closed),
    flush again; a flush that fails makes the exit status 120. Daemon threads are left to
    die with the process. A program that never gets through this (a thread that spins forever) is
    stopped by the runner's time limits, from outside, as CPython would hang.
    """
    threading = sys.modules.get("threading")
    if threading is not None:
        try:
            threading._shutdown()
        except BaseException:  # CPython reports it as unraisable and goes on
            pass
    import atexit

    atexit._run_exitfuncs()
    status = _flush_std(status)
    try:
        # As finalize_modules does: the original streams come back first (a fast-I/O wrapper
        # left in sys.stdout would flush through module globals that are gone by then).
        sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__
        namespace.clear()
    except BaseException:  # a hostile __del__
        pass
    return _flush_std(status)


#: The candidate's sys.stdin/stdout/stderr, made once in the runner over fds 0-2 (which every
#: child points at its own pipes before running anything): cheaper than building them per child.
_STD_STREAMS = ()
#: Objects the children must not free (see main).
_KEPT: list = []


def _make_std_streams():
    """Like CPython's own stdio: made by ``open``, with ``mode``, ``name`` and ``buffer``."""

    stdin = open(0, encoding="utf-8", errors="replace", closefd=False)
    stdout = open(1, "w", encoding="utf-8", errors="surrogateescape", closefd=False)
    stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    stderr.reconfigure(line_buffering=True)
    for stream, name in ((stdin, "<stdin>"), (stdout, "<stdout>"), (stderr, "<stderr>")):
        stream.buffer.raw.name = name
    return stdin, stdout, stderr


def _install_exit_builtins():
    """``exit()`` and ``quit()``, which ``site`` would add (the runner runs with ``-S``)."""
    import builtins

    try:
        from _sitebuiltins import Quitter
    except ImportError:
        return
    builtins.exit = Quitter("exit", "Ctrl-D (i.e. EOF)")
    builtins.quit = Quitter("quit", "Ctrl-D (i.e. EOF)")


def _child_setup(mode, uid, workdir, limits, stdin_fd, out_w, err_w, res_w, cpu_budget_s):
    """Runs in the child right after fork, before any candidate code."""
    import resource

    os.setsid()
    try:
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        os.write(fd, b"1000")
        os.close(fd)
    except OSError:
        pass
    os.dup2(stdin_fd, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.dup2(res_w, 3)
    os.closerange(4, 65536)
    mem = int((limits["memory_mb"] + _AS_HEADROOM_MB) * (1 << 20))
    cpu = max(1, int(cpu_budget_s + 0.999))
    fsize = int(limits["file_size_mb"] * (1 << 20))
    for res, value in (
        (resource.RLIMIT_AS, (mem, mem)),
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_FSIZE, (fsize, fsize)),
    ):
        try:
            resource.setrlimit(res, value)
        except (ValueError, OSError):
            pass
    if mode == CONTAINER and os.getuid() == 0:
        os.setgid(uid)  # no supplementary groups: cleared once in main()
        os.setuid(uid)
    os.chdir(workdir)
    sys.stderr = _STD_STREAMS[2]  # the rest of sys is set once, in main()


# ----------------------------------------------------------------------------- parent side
class Runner:
    """Reads jobs from the host, runs them in forked children, writes raw results back."""

    def __init__(self, mode, workdir, uid, proto_in, proto_out):
        self.mode = mode
        self.workdir = workdir
        self.uid = uid
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.tainted = False
        self.has_pidfd = hasattr(os, "pidfd_open")
        self.test_cache = {}
        #: Where a candidate can leave files (POSIX shared memory and message queues are
        #: files in /dev/shm and /dev/mqueue): wiped after every child.
        shared = ("/dev/shm", "/dev/mqueue") if mode == CONTAINER else ()
        self.wipe_dirs = [workdir, *(d for d in shared if os.path.isdir(d))]
        #: The work dir's mode, put back after a candidate chmod-ed it (an empty work dir left
        #: without search permission would fail every later program's chdir).
        self.work_mode = os.stat(workdir).st_mode & 0o7777
        try:  # kept open: one pread per check instead of an open/read/close
            self.oom_fd = os.open(_OOM_CONTROL, os.O_RDONLY)
        except OSError:
            self.oom_fd = None
        self.oom_count = self.oom_kills()
        #: System V IPC objects outlive their creator: in the container's own IPC namespace
        #: they are the candidate's leftovers (memory charged to the container, state for the
        #: next program), removed after every child. Never in local mode, where they would be
        #: the user's own.
        try:
            with open("/proc/sys/fs/pipe-max-size") as f:
                self.pipe_size = min(int(f.read()), _PIPE_SIZE)
        except (OSError, ValueError):
            self.pipe_size = 0
        self.ipc_fds = {}
        for kind in _SYSV_IPC if mode == CONTAINER else ():
            try:
                self.ipc_fds[kind] = os.open(f"/proc/sysvipc/{kind}", os.O_RDONLY)
            except OSError:
                pass

    def compile_test(self, source, filename):
        """(code, compile error, imported modules) of assert-style test code, cached: RL
        samples many programs per task, and compiling a HumanEval test costs more than
        forking the child that runs it."""
        key = (source, filename)
        cached = self.test_cache.get(key)
        if cached is None:
            cached = (*_compile(source, filename), _imported_modules(source))
            if len(self.test_cache) >= _TEST_CACHE_SIZE:
                self.test_cache.pop(next(iter(self.test_cache)))
            self.test_cache[key] = cached
        else:  # tracebacks show this test's lines
            _set_source_lines(source, filename)
        return cached

    def oom_kills(self):
        """The memory cgroup's OOM-kill counter (0 where there is none)."""
        if self.oom_fd is None:
            return 0
        try:
            data = os.pread(self.oom_fd, 512, 0)
            return int(data.split(b"oom_kill ")[1].split()[0])
        except (OSError, IndexError, ValueError):
            return 0

    # -- the main loop
    def serve(self):
        write_frame(self.proto_out, {"op": "ready", "pid": os.getpid(), "mode": self.mode})
        while True:
            msg = read_frame(self.proto_in)
            if msg is None:  # the host closed our stdin: its pool is gone
                return
            self.tainted = False
            result = self.run_job(msg)
            result.update(op="result", id=msg.get("id"), tainted=self.tainted)
            write_frame(self.proto_out, result)
            if self.tainted:  # no later job may run among the leftovers: the host replaces us
                return

    def run_job(self, job):
        tests = job["tests"]
        limits = job["limits"]
        records = [None] * len(tests)
        lines = set()
        # Compiled here, once, not in each child: compiling in a fresh fork touches hundreds
        # of copy-on-write pages, which costs more than the fork itself. Compiling never runs
        # the candidate's code, and CPython bounds constant folding and nesting depth.
        code, compile_error = _compile(job["program"])
        for i, test in enumerate(tests):
            if test["kind"] == "assert" and compile_error is None:
                test["compiled"], error, test["modules"] = self.compile_test(
                    test["code"], TEST_FILE % i
                )
                if error is not None:
                    compile_error = "the test does not compile: " + error
        if compile_error is not None:
            return {
                "tests": [{"status": "skipped"}] * len(tests),
                "compile_error": compile_error,
                "lines": [],
            }
        stop = bool(job.get("stop_on_failure"))
        max_timeouts = job.get("max_timeouts") or len(tests) + 1
        timeouts = 0
        i = 0
        if not tests:  # no tests: run the program once, only its exit status counts
            job = dict(job, tests=[{"kind": "stdio", "input": ""}])
            tests = job["tests"]
            records = [None]
        while i < len(tests):
            if tests[i]["kind"] == "stdio":
                j = i + 1
            else:
                j = i
                while j < len(tests) and tests[j]["kind"] != "stdio":
                    j += 1
            unit = self.run_unit(job, code, i, j, limits, lines)
            if job.get("trace"):
                unit = self._untraced_if_timed_out(job, code, unit, limits, lines)
            for k, rec in unit["records"].items():
                records[k] = rec
            resume = unit["resume"]
            failed = any(r["status"] != "ok" or "exception" in r for r in unit["records"].values())
            timeouts += sum(r["status"] == "timeout" for r in unit["records"].values())
            if (stop and failed) or timeouts >= max_timeouts:
                break
            i = resume
        for k, rec in enumerate(records):
            if rec is None:
                records[k] = {"status": "skipped"}
        return {"tests": records, "compile_error": None, "lines": sorted(lines)}

    def _untraced_if_timed_out(self, job, code, unit, limits, lines):
        """Tracing must never change a verdict: the line tracer slows a program several times,
        so a test that ran out of time traced is run again untraced, and that run decides it.
        (The lines it reached while traced were lost with the killed child.)"""
        late = [k for k, r in unit["records"].items() if r["status"] == "timeout"]
        if not late:
            return unit
        k = min(late)
        again = self.run_unit(dict(job, trace=False), code, k, unit["resume"], limits, lines)
        records = {i: r for i, r in unit["records"].items() if i < k}
        records.update(again["records"])
        return {"records": records, "resume": again["resume"]}

    def run_unit(self, job, code, start, stop, limits, lines):
        """Fork one child for tests[start:stop]; returns their records and where to resume."""
        tests = job["tests"]
        stdio = tests[start]["kind"] == "stdio"
        stdin_fd = self._stdin_fd(tests[start].get("input", "") if stdio else "")
        out_r, out_w = self._pipe()
        err_r, err_w = self._pipe()
        res_r, res_w = self._pipe()
        oom_before = self.oom_count
        cpu_budget = limits["cpu_time_s"] * (1 if stdio else (stop - start + 1))
        # Built before the fork: while the child lives, every page the runner writes is
        # copied (copy-on-write), so it does as little as it can until the child is done.
        watch = _Watch(limits, out_r, err_r, res_r, start)
        _freeze_heap()
        pid = os.fork()
        if pid == 0:  # child
            try:
                _child_setup(
                    self.mode,
                    self.uid,
                    self.workdir,
                    limits,
                    stdin_fd,
                    out_w,
                    err_w,
                    res_w,
                    cpu_budget,
                )
                child = _Child(3, job, code, bool(job.get("trace")))
                if stdio:
                    child.run_stdio()
                else:
                    child.run_calls(start, stop)
            except BaseException:
                pass
            os._exit(70)
        for fd in (stdin_fd, out_w, err_w, res_w):
            os.close(fd)
        watch.started_child(pid, self.has_pidfd)
        try:
            watch.loop(stdio)
        finally:
            self._cleanup(pid, watch)
            watch.drain()
            for fd in (out_r, err_r, res_r):
                os.close(fd)
        self.oom_count = self.oom_kills()  # also the count before the next child
        return watch.records(start, stop, stdio, self.oom_count > oom_before, lines)

    def _pipe(self):
        """A pipe as large as the kernel lets us make it (see _Watch)."""
        r, w = os.pipe()
        if self.pipe_size:
            try:
                fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, self.pipe_size)
            except OSError:  # over the per-user pipe budget: the default size still works
                pass
        return r, w

    def _stdin_fd(self, data):
        """The test's stdin as a file, not a pipe: fast-I/O templates read
        ``os.read(0, os.fstat(0).st_size)``, which needs a real size."""
        if not data:
            return os.open(os.devnull, os.O_RDONLY)
        raw = data.encode("utf-8", "surrogateescape")
        fd = os.memfd_create("stdin", 0)
        view = memoryview(raw)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    # -- after every child: nothing of the candidate survives
    def _cleanup(self, pid, watch):
        # Orphans reparent to us (subreaper), so "no children left" means no descendants
        # left. The child was reaped and nothing else is: no candidate process exists, and
        # none can appear, so there is nothing to kill (the usual case, and kill(-1) walks
        # every process of the machine).
        if watch.status is not None and _reap_children():
            self._wipe()
            return
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        if self.mode == CONTAINER:
            try:
                os.kill(-1, signal.SIGKILL)  # we are root with CAP_KILL; PID 1 and we are spared
            except OSError:
                pass
        watch.wait()
        deadline = time.monotonic() + 2.0
        while not _reap_children():
            for p in _descendants(os.getpid()):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            if time.monotonic() > deadline:
                self.tainted = True
                break
            time.sleep(0.0005)
        self._wipe()

    def _wipe(self):
        if not self._dirty():
            return
        pid = os.fork()
        if pid == 0:
            try:
                # As the candidate's uid: the owner of what is left (the runner has no
                # CAP_DAC_OVERRIDE or CAP_FOWNER, and must not follow the candidate's links
                # with more rights than the candidate).
                if self.mode == CONTAINER and os.getuid() == 0:
                    os.setgroups([])
                    os.setgid(self.uid)
                    os.setuid(self.uid)
                _restore_dir(self.workdir, self.work_mode)
                for d in self.wipe_dirs:
                    _remove_contents(d)
                _remove_ipc_objects(self.ipc_fds)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        if self._dirty():
            self.tainted = True

    def _dirty(self):
        """Whether the candidate left anything: files, the work dir's mode or extended
        attributes, System V IPC objects. Cheap when nothing is left (one stat, one listxattr,
        a listdir per dir, a pread per IPC kind)."""
        try:
            if os.stat(self.workdir).st_mode & 0o7777 != self.work_mode:
                return True
            if any(a.startswith("user.") for a in os.listxattr(self.workdir)):
                return True
            if any(os.listdir(d) for d in self.wipe_dirs):
                return True
        except OSError:  # unreadable (the candidate chmod-ed it): wipe as its owner
            return True
        return any(_ipc_ids(fd) for fd in self.ipc_fds.values())


class _Watch:
    """Watches one child: captures output, enforces wall and CPU time, collects records.

    While the child runs, the runner sleeps on its pidfd and looks at the pipes only at growing
    intervals (``_FIRST_LOOK_S`` doubling to ``_MAX_LOOK_S``), not at every write: each
    wake-up of the runner while the child lives costs it copy-on-write faults on the pages it
    touches, and most checks end before the first look. The pipes are enlarged so that a whole
    ordinary output fits without the child waiting for a look.
    """

    def __init__(self, limits, out_r, err_r, res_r, first_test):
        self.pid = 0
        self.pidfd = None
        self.limits = limits
        self.cap = int(limits["max_output_bytes"])
        self.fds = {out_r: "out", err_r: "err", res_r: "res"}
        self.buf = {"out": bytearray(), "err": bytearray(), "res": bytearray()}
        self.per_test = {}  # test index -> (out_offset, err_offset)
        self.next_test = first_test  # the only index a "start" record may name next
        self.messages = []
        self.killed_for = None  # "timeout" | "output" when the runner killed the child
        self.status = None
        self.rusage = None
        self.truncated = False
        self.started = self.test_started = 0.0
        self.cpu_base = 0.0
        for fd in self.fds:
            os.set_blocking(fd, False)

    def started_child(self, pid, has_pidfd):
        """The child to watch has just been forked."""
        self.pid = pid
        self.started = self.test_started = time.monotonic()
        self.pidfd = os.pidfd_open(pid) if has_pidfd else None

    def loop(self, stdio):
        wall = float(self.limits["wall_time_s"])
        cpu_limit = float(self.limits["cpu_time_s"])
        if stdio:
            self.per_test[self.next_test] = (0, 0)
            self.next_test = None  # a stdio program has no say over its clock
        look = _FIRST_LOOK_S
        while True:
            remaining = self.test_started + wall - time.monotonic()
            if remaining <= 0:
                self.killed_for = "timeout"
                return
            if self._exited(min(remaining, look)):
                return
            if self._look():
                look = _FIRST_LOOK_S  # a pipe was filling up: the child may be waiting
            else:
                look = min(2 * look, _MAX_LOOK_S)
            if self.killed_for:
                return
            # The whole tree's CPU: forked children each stay under their own RLIMIT_CPU
            # while together they spend far more (and a parent waiting on one that the
            # rlimit killed would otherwise exit "cleanly" with the limit exceeded).
            if cpu_limit < wall and _tree_cpu(self.pid) - self.cpu_base > cpu_limit:
                self.killed_for = "timeout"
                return

    def _exited(self, timeout):
        """Wait up to ``timeout`` s for the child to end; True (status kept) if it did."""
        if self.pidfd is not None:
            if not select.select([self.pidfd], [], [], timeout)[0]:
                return False
            done, status, rusage = os.wait4(self.pid, os.WNOHANG)
        else:  # no pidfd (kernel < 5.3): poll
            deadline = time.monotonic() + timeout
            while True:
                done, status, rusage = os.wait4(self.pid, os.WNOHANG)
                if done or time.monotonic() >= deadline:
                    break
                time.sleep(0.002)
        if done:
            self.status, self.rusage = status, rusage
        return bool(done)

    def _look(self):
        """Read what the pipes hold; True if one held much (its writer may be blocked)."""
        busy = False
        for fd in self.fds:
            while True:
                got = self._read(fd)
                if got < _PIPE_READ:
                    break
                busy = True
        return busy

    def _read(self, fd):
        """One read of ``fd`` into its buffer; the number of bytes read (0 at EOF or none)."""
        try:
            data = os.read(fd, _PIPE_READ)
        except OSError:  # EAGAIN: nothing there
            return 0
        name = self.fds[fd]
        buf = self.buf[name]
        if name == "res":
            buf += data
            if len(buf) > 64 << 20:  # the candidate is flooding the result pipe
                self.killed_for = "output"
                return 0
            self._parse_res()
            return len(data)
        room = self.cap - len(buf)
        if len(data) > room:
            buf += data[: max(room, 0)]
            self.truncated = True
            self.killed_for = "output"
            return 0
        buf += data
        return len(data)

    def _parse_res(self):
        buf = self.buf["res"]
        started = False
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            if msg.get("t") == "start":
                # Only the next test's start restarts the clock (a forged one could otherwise
                # keep a program alive for ever): at most one full time limit per test.
                if self.next_test is None or msg.get("i") != self.next_test:
                    continue
                self.per_test[self.next_test] = (len(self.buf["out"]), len(self.buf["err"]))
                self.next_test += 1
                started = True
            self.messages.append(msg)
        if started:  # the clock of the last test started (one look may see many)
            self.test_started = time.monotonic()
            self.cpu_base = _proc_cpu(self.pid)

    def wait(self):
        """Collect the child's exit status (call after killing it)."""
        if self.status is None:
            try:
                _, self.status, self.rusage = os.wait4(self.pid, 0)
            except ChildProcessError:
                pass

    def drain(self):
        for fd in self.fds:
            while self.killed_for != "output" or self.fds[fd] == "res":
                try:
                    data = os.read(fd, _PIPE_READ)
                except OSError:
                    break
                if not data:
                    break
                name = self.fds[fd]
                if name == "res":
                    self.buf["res"] += data
                else:
                    room = self.cap - len(self.buf[name])
                    if len(data) > room:
                        self.truncated = True
                    self.buf[name] += data[: max(room, 0)]
        self._parse_res()
        if self.pidfd is not None:
            os.close(self.pidfd)

    def records(self, start, stop, stdio, oom, lines):
        """Turn what was seen into one record per test of the unit."""
        wall = time.monotonic() - self.started
        status, ru = self.status, self.rusage
        cpu = (ru.ru_utime + ru.ru_stime) if ru else 0.0
        mem = (ru.ru_maxrss / 1024.0) if ru else 0.0
        exit_code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None
        sig = os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else None
        done, exception = {}, None
        for msg in self.messages:
            kind = msg.get("t")
            if kind == "done" and isinstance(msg.get("i"), int) and start <= msg["i"] < stop:
                done[msg["i"]] = msg
            elif kind == "exception":
                exception = msg
            elif kind == "lines":
                lines.update(x for x in msg.get("lines", ()) if type(x) is int)
        result = {"records": {}, "resume": stop}
        # How the child ended, as a status for the test that was running when it did.
        if self.killed_for == "timeout":
            end = "timeout"
        elif self.killed_for == "output" or self.truncated:
            end = "output_limit"
        elif sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= self.limits["cpu_time_s"]):
            end = "timeout"
        elif oom:  # any process of the candidate's tree was OOM-killed by the cgroup
            end = "memory"
        elif exception and exception.get("exception") == "MemoryError":
            end = "memory"
        elif sig is not None or exit_code not in (0, None) or exception:
            end = "crash"
        else:
            end = "ok"
        base = {
            "exit_code": exit_code,
            "signal": sig,
            "truncated": self.truncated,
            "mem_mb": round(mem, 2),
        }
        out, err = self.buf["out"], self.buf["err"]
        if stdio:
            rec = dict(base, status=end, cpu=cpu, wall=wall, stdout=_text(out), stderr=_text(err))
            if exception:
                rec.update(
                    exception=exception.get("exception"),
                    message=exception.get("message"),
                    traceback=exception.get("traceback"),
                )
            result["records"][start] = rec
            return result
        # A unit of call/assert tests: finished ones, then the one that was running.
        offsets = sorted(self.per_test.items())
        for k, (i, (o, e)) in enumerate(offsets):
            o2, e2 = offsets[k + 1][1] if k + 1 < len(offsets) else (len(out), len(err))
            rec = dict(base, stdout=_text(out[o:o2]), stderr=_text(err[e:e2]))
            if i in done:
                msg = done[i]
                rec.update(status="ok", wall=_num(msg.get("wall")), cpu=_num(msg.get("cpu")))
                for key in ("value", "bad_value", "exception", "message", "traceback", "nonce"):
                    if key in msg:
                        rec[key] = msg[key]
                if "value" in msg:
                    rec["has_value"] = True
                rec["exit_code"], rec["signal"] = None, None
            else:
                rec.update(
                    status=end if end != "ok" else "crash",
                    wall=wall,
                    cpu=cpu,
                    message="the program ended before the test finished",
                )
                if exception:
                    rec.update(
                        exception=exception.get("exception"),
                        message=exception.get("message"),
                        traceback=exception.get("traceback"),
                    )
                result["resume"] = i + 1
                result["records"][i] = rec
                return result
            result["records"][i] = rec
        first_missing = next((i for i in range(start, stop) if i not in done), None)
        if (first_missing is not None and not offsets) or (
            first_missing is not None and first_missing > offsets[-1][0]
        ):
            # The program died before reaching a test (module-level error, timeout, ...): every
            # remaining test of the unit gets that outcome.
            rec = dict(
                base,
                status=end if end != "ok" else "crash",
                wall=wall,
                cpu=cpu,
                stdout=_text(out),
                stderr=_text(err),
                message="the program ended before the tests ran",
            )
            if exception:
                rec.update(
                    exception=exception.get("exception"),
                    message=exception.get("message"),
                    traceback=exception.get("traceback"),
                )
            for i in range(first_missing, stop):
                result["records"][i] = rec
        return result


def _text(data):
    return bytes(data).decode("utf-8", "replace")


def _num(x):
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else 0.0


def _proc_cpu(pid):
    """CPU seconds of ``pid`` (all threads) from /proc; 0.0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def _tree_cpu(pid):
    """CPU seconds of ``pid``, the children it reaped, and its live descendants."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        total = sum(int(x) for x in fields[11:15]) / _CLK_TCK  # utime stime cutime cstime
    except (OSError, IndexError, ValueError):
        return 0.0
    return total + sum(_proc_cpu(d) for d in _descendants(pid))


def _descendants(root):
    """Pids whose parent chain leads to ``root`` (orphans reparent to us: we are a subreaper)."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    parents[int(name)] = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier and p not in found}
        found |= frontier
    return found


def _reap_children():
    """Reap every exited child; True when no child (alive or zombie) is left."""
    while True:
        try:
            done, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if done == 0:
            return False


def _remove_contents(path):
    try:
        names = os.listdir(path)
    except PermissionError:
        os.chmod(path, 0o700)
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        full = os.path.join(path, name)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                os.chmod(full, 0o700)
                _remove_contents(full)
                os.rmdir(full)
            else:
                os.unlink(full)
        except OSError:
            pass


_SYSV_IPC = ("shm", "msg", "sem")


def _ipc_ids(fd):
    """Ids listed in a /proc/sysvipc file (its first line is a header)."""
    try:
        lines = os.pread(fd, 1 << 16, 0).splitlines()[1:]
        return [int(line.split()[1]) for line in lines if line.strip()]
    except (OSError, IndexError, ValueError):
        return []


def _remove_ipc_objects(fds):
    """Remove the System V IPC objects listed in ``fds`` (kind -> open /proc/sysvipc file)."""
    if not any(_ipc_ids(fd) for fd in fds.values()):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    ipc_rmid = 0
    for kind, fd in fds.items():
        for ipc_id in _ipc_ids(fd):
            if kind == "shm":
                libc.shmctl(ipc_id, ipc_rmid, None)
            elif kind == "msg":
                libc.msgctl(ipc_id, ipc_rmid, None)
            else:
                libc.semctl(ipc_id, 0, ipc_rmid)


def _restore_dir(path, mode):
    """Give ``path`` back ``mode`` and drop the user extended attributes set on it."""
    try:
        os.chmod(path, mode)
        for name in os.listxattr(path):
            if name.startswith("user."):
                os.removexattr(path, name)
    except OSError:
        pass


_freezes = 0


def _freeze_heap():
    """Move every object the runner has into the collector's permanent generation before a
    fork, so that the child's collections walk only the child's own objects: walking the
    runner's (the job just decoded, the code just compiled) would copy every page they are
    on. Objects frozen are never collected, so now and then the runner collects its own
    cycles first."""
    global _freezes
    _freezes += 1
    if _freezes % 1024 == 0:
        gc.unfreeze()
        gc.collect()
    gc.freeze()


def _libc():
    """The C library through ctypes, or ``None`` where it cannot be loaded."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except (OSError, ImportError):
        return None


def _trim_heap(libc):
    """Give the C heap's free memory back to the system once start-up is over (about 1.8 MB
    here: the runner's source, the imports' garbage). Every resident page is a page-table
    entry that each ``fork`` copies and each child's exit tears down."""
    try:
        libc.malloc_trim(0)
    except AttributeError:  # not glibc
        pass


def _become_subreaper(libc):
    try:
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except AttributeError:
        pass


#: Environment variables the docker backend sets: the path of a Unix socket the host listens
#: on (in a directory it mounted into the container) and the host's uid, which owns it.
SOCKET_ENV = "CODEGYM_SOCKET"
HOST_UID_ENV = "CODEGYM_HOST_UID"


def _connect_to_host(path, host_uid):
    """A socket connected to the host's listener at ``path``, as a plain fd; ``None`` if it
    cannot be reached (a remote daemon, SELinux labels, user namespaces...): the protocol
    then stays on stdin/stdout. The directory is private to the host's uid, so the runner
    takes that uid for the connect (it keeps its root uid, and so its capabilities, as its
    real and saved uid)."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    switched = False
    try:
        if host_uid is not None and host_uid != os.geteuid() and os.geteuid() == 0:
            os.seteuid(host_uid)
            switched = True
        sock.connect(path)
        return sock.detach()
    except OSError as e:
        print(f"codegym runner: no host socket ({e}); using stdin/stdout", file=sys.stderr)
        sock.close()
        return None
    finally:
        if switched:
            os.seteuid(0)


def main(argv):
    """``runner.py MODE WORKDIR UID [PATH...]``: PATHs (the process backend's site-packages) go
    on ``sys.path``. With ``CODEGYM_SOCKET`` set, the protocol runs over that Unix socket
    (the docker backend: no relay through Docker's daemons) when it can be reached."""
    mode, workdir, uid = argv[0], argv[1], int(argv[2])
    sys.path.extend(argv[3:])
    socket_path = os.environ.get(SOCKET_ENV)
    host_uid = os.environ.get(HOST_UID_ENV, "")
    proto_sock = None
    if socket_path:
        proto_sock = _connect_to_host(socket_path, int(host_uid) if host_uid.isdigit() else None)
    for name in _WARM_MODULES:
        try:
            __import__(name)
        except ImportError:
            pass
    libc = _libc()
    if libc is not None:
        _become_subreaper(libc)
    # The candidate's environment, set once here instead of in every child.
    os.environ.clear()
    os.environ.update(
        PATH="/usr/local/bin:/usr/bin:/bin",
        HOME=workdir,
        TMPDIR=workdir,
        LANG="C.UTF-8",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONIOENCODING="utf-8",
    )
    # Objects that exist now are never collected in a child, so its collections do not touch
    # (and copy-on-write) the runner's whole heap.
    import atexit
    import builtins

    _PRISTINE_BUILTINS.update(vars(builtins))
    for name in _PRISTINE_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            _PRISTINE[name] = (module, vars(module), dict(vars(module)))
    atexit._clear()  # the children run only their own program's handlers
    gc.collect()
    if libc is not None:
        _trim_heap(libc)
    gc.freeze()
    # The protocol moves to private fds so no child inherits them; 0-2 become /dev/null (the
    # runner's own messages go to its private copy of stderr).
    global _STD_STREAMS
    if proto_sock is not None:
        proto_in = proto_out = proto_sock
    else:
        proto_in, proto_out = os.dup(0), os.dup(1)
    log_fd = os.dup(2)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    log = os.fdopen(log_fd, "w", buffering=1)
    _STD_STREAMS = _make_std_streams()
    # The interpreter's own streams stay referenced here: dropped in a child, their buffers
    # would be freed there, a copy-on-write fault per page. The children's streams are set
    # now, all but stderr, which is the runner's log until a child takes it over.
    _KEPT.extend((sys.stdin, sys.stdout, sys.stderr, log))
    sys.stdin, sys.stdout = _STD_STREAMS[:2]
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = _STD_STREAMS  # type: ignore[misc]
    sys.stderr = log
    sys.argv = [SOLUTION_FILE]
    sys.path[:] = [p for p in sys.path if p not in ("", ".", workdir)]
    _install_exit_builtins()
    # Set once here for every child to inherit (Python itself ignores SIGPIPE and SIGXFSZ,
    # which would hide a broken pipe or the file-size limit from the candidate).
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Inherited by every child (the runner itself writes no files and dumps no core).
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.umask(0o022)
    if mode == CONTAINER and os.getuid() == 0:
        os.setgroups([])
    Runner(mode, workdir, uid, proto_in, proto_out).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
