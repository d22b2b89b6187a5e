"""The sandbox image: what it holds, how its tag names that, builds with more packages.

Issue 7, item 5: interview-style datasets import sortedcontainers and contest solutions import
numpy; both must work in the default image, and other Debian packages in images built with
``--packages``.
"""

from __future__ import annotations

import os
import shutil

import pytest

from codegym import __version__
from codegym.errors import UsageError
from codegym.sandbox import TestCase, Verdict, make_sandbox
from codegym.sandbox.docker import DEFAULT_PACKAGES, IMAGE, image_packages, image_tag
from codegym.sandbox.image import _debootstrap_error, build_image, image_contents

#: The header LeetCode-derived datasets put before every solution (abridged).
LEETCODE_HEADER = (
    "from typing import *\nfrom functools import *\nfrom collections import *\n"
    "from itertools import *\nfrom heapq import *\nfrom bisect import *\n"
    "from sortedcontainers import SortedList, SortedDict, SortedSet\nimport math\n"
)


def test_every_image_holds_python3_and_the_defaults_once_sorted():
    assert DEFAULT_PACKAGES == ("python3-numpy", "python3-sortedcontainers")
    assert image_packages() == ("python3", "python3-numpy", "python3-sortedcontainers")
    assert image_packages(["python3-scipy", "python3-numpy", " python3-scipy "]) == (
        "python3",
        "python3-numpy",
        "python3-scipy",
        "python3-sortedcontainers",
    )


def test_the_tag_names_the_package_set():
    assert IMAGE == image_tag() == image_tag(DEFAULT_PACKAGES) == image_tag(["python3"])
    assert IMAGE.startswith(f"codegym-sandbox:{__version__}-")
    # The image of earlier versions (python3 alone) was codegym-sandbox:<version>: a machine
    # that has it does not mistake it for the default image, and builds that.
    assert IMAGE != f"codegym-sandbox:{__version__}"
    scipy = image_tag(["python3-scipy"])
    assert scipy != IMAGE
    assert (
        scipy == image_tag(["python3-scipy", "python3-numpy"]) == image_tag(["python3-scipy"] * 2)
    )
    assert image_tag(["python3-scipy", "python3-sympy"]) == image_tag(
        ["python3-sympy", "python3-scipy"]
    )


@pytest.mark.parametrize("bad", [["Numpy"], ["python3-numpy; rm -rf /"], ["-x"], "python3-scipy"])
def test_a_bad_package_name_is_a_usage_error(bad):
    with pytest.raises(UsageError):
        image_tag(bad)


def test_debian_lacking_a_package_is_a_usage_error():
    output = (
        "I: Retrieving InRelease \nI: Checking Release signature\n"
        "E: Couldn't find these debs: python3-nosuchthing\n"
    )
    error = _debootstrap_error(output, 1, "bookworm")
    assert isinstance(error, UsageError)
    assert "Debian bookworm (main) has no package python3-nosuchthing" in str(error)


@pytest.mark.docker
def test_the_default_image_holds_numpy_and_sortedcontainers():
    contents = image_contents(IMAGE)
    assert contents.wanted == image_packages()
    assert set(contents.packages) == set(image_packages())
    assert contents.modules["numpy"] and contents.modules["sortedcontainers"]
    assert contents.python.startswith("3.")
    assert not contents.missing
    assert 50 < contents.size_mb < 400


@pytest.mark.docker
def test_a_leetcode_style_solution_imports_sortedcontainers(docker_sandbox):
    program = LEETCODE_HEADER + (
        "class Solution:\n"
        "    def medians(self, nums: List[int]) -> List[float]:\n"
        "        seen, out = SortedList(), []\n"
        "        for x in nums:\n"
        "            seen.add(x)\n"
        "            n = len(seen)\n"
        "            out.append((seen[(n - 1) // 2] + seen[n // 2]) / 2)\n"
        "        return out\n"
    )
    r = docker_sandbox.run(program, [TestCase.call([[5, 1, 3]], [5.0, 3.0, 3.0])], "medians")
    assert r.passed, r


@pytest.mark.docker
def test_a_contest_solution_imports_numpy(docker_sandbox):
    program = (
        "import sys\nimport numpy as np\n"
        "n = int(sys.stdin.readline())\n"
        "a = np.array(sys.stdin.readline().split(), dtype=np.int64)\n"
        "print(int(np.cumsum(a).max()), np.__name__)\n"
    )
    r = docker_sandbox.run(program, [TestCase.stdio("4\n3 -1 4 -9\n", "6 numpy")])
    assert r.passed, r
    missing = docker_sandbox.run("import nosuchmodule", [TestCase.stdio("", "")])
    assert missing.verdict is Verdict.RUNTIME_ERROR
    assert missing.tests[0].exception == "ModuleNotFoundError"


@pytest.mark.docker
def test_envs_take_an_image(docker_sandbox):
    import gymnasium as gym

    env = gym.make(
        "codegym:MultiTurnRepair-v0",
        tasks="toy",
        sandbox={"backend": "docker", "image": IMAGE, "size": 1},
    )
    try:
        env.reset(seed=0)
        assert env.unwrapped.sandbox.image == IMAGE
        assert env.unwrapped.sandbox.size == 1
    finally:
        env.close()


@pytest.mark.docker
def test_a_missing_image_says_how_to_build_it():
    from codegym.sandbox import SandboxError

    with pytest.raises(SandboxError, match=r"build it with `codegym sandbox build --packages"):
        make_sandbox("docker", size=1, image=image_tag(["python3-nosuchthing"]))


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("debootstrap") is None,
    reason="building an image needs root and debootstrap",
)
def test_an_image_with_more_packages():
    # Built once per machine (minutes: debootstrap, then docker import); later runs check
    # the image that build left.
    tag = build_image(["python3-more-itertools"])
    assert tag == image_tag(["python3-more-itertools"])
    contents = image_contents(tag)
    assert "python3-more-itertools" in contents.packages and not contents.missing
    with make_sandbox("docker", size=1, image=tag) as sb:
        r = sb.run(
            "import more_itertools, numpy, sortedcontainers\n"
            "print(list(more_itertools.chunked(range(5), 2)))\n",
            [TestCase.stdio("", "[[0, 1], [2, 3], [4]]")],
        )
    assert r.passed, r
