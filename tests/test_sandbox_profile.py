"""benchmarks/sandbox_profile.py's sorting of perf samples (the profile itself is a benchmark)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def profile() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        "sandbox_profile", ROOT / "benchmarks/sandbox_profile.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def k(sym: str) -> tuple[str, bool]:
    return (sym, True)


def u(sym: str) -> tuple[str, bool]:
    return (sym, False)


@pytest.mark.parametrize(
    ("chain", "kind"),
    [
        ([k("copy_mc_enhanced_fast_string"), k("do_wp_page"), k("asm_exc_page_fault"),
          u("_PyEval_EvalFrameDefault")], "page faults"),
        ([k("copy_page_range"), k("dup_mmap"), k("copy_process"), k("kernel_clone"),
          u("_Fork")], "fork"),
        ([k("unmap_page_range"), k("exit_mmap"), k("do_exit"), k("do_group_exit")], "exit"),
        ([k("vfs_read"), k("do_syscall_64"), u("read")], "other kernel"),
        ([u("PyNumber_Remainder"), u("_PyEval_EvalFrameDefault")], "user"),
        # A fault taken while forking is a page fault, not fork's page-table copy.
        ([k("exc_page_fault"), k("copy_process")], "page faults"),
        ([], "user"),
    ],
)  # fmt: skip
def test_classify_by_call_chain(profile: ModuleType, chain, kind: str) -> None:
    assert profile.classify(chain) == kind
    assert kind in profile.KINDS


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("55d0c2a00000-55d0c2c00000 rw-p 00000000 00:00 0          [heap]", "C heap"),
        ("7ffd1000-7ffd2000 rw-p 00000000 00:00 0                  [stack]", "stack"),
        ("7f3a00000000-7f3a00100000 rw-p 00000000 00:00 0 ", "anonymous (Python's arenas)"),
        ("00400000-00600000 r-xp 00001000 08:01 42  /usr/bin/python3.11", "python3.11 code"),
        ("00900000-00a00000 rw-p 00500000 08:01 42  /usr/bin/python3.11", "python3.11 data"),
        ("00800000-00900000 r--p 00400000 08:01 42  /usr/bin/python3.11",
         "python3.11 read-only data"),
    ],
)  # fmt: skip
def test_regions_of_the_address_space(profile: ModuleType, line: str, name: str) -> None:
    assert profile.region(line) == name
