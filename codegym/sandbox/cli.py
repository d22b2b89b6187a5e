"""``codegym sandbox build|doctor|cleanup``.

Set-up problems (no daemon, no root for a build) and bad input (a package Debian lacks) are
raised, and ``codegym``'s ``main`` prints them as one line; ``doctor`` reports what it finds as
``[ok]``/``[fail]`` lines instead, with exit status 1 when something fails.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from codegym.errors import UsageError
from codegym.sandbox.base import SandboxError


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sandbox`` command and its subcommands to the ``codegym`` parser."""
    parser = subparsers.add_parser("sandbox", help="build and check the docker sandbox")
    sub = parser.add_subparsers(dest="sandbox_command", required=True)

    build = sub.add_parser("build", help="build the sandbox image (offline with debootstrap)")
    build.add_argument("--method", choices=["auto", "debootstrap", "dockerfile"], default="auto")
    _image_arguments(build)
    build.add_argument("--suite", default=None, help="Debian suite for debootstrap")
    build.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    build.set_defaults(func=_build)

    doctor = sub.add_parser(
        "doctor", help="check the daemon, the image and its contents, and a real execution"
    )
    _image_arguments(doctor)
    doctor.add_argument(
        "--ray",
        action="store_true",
        help="check a Ray cluster instead: each node's Docker and image, and actors on them",
    )
    doctor.add_argument(
        "--address",
        default=None,
        help="the Ray cluster for --ray (default: RAY_ADDRESS, else a private local instance)",
    )
    doctor.set_defaults(func=_doctor)

    cleanup = sub.add_parser("cleanup", help="remove codegym containers left by dead processes")
    cleanup.add_argument("--all", action="store_true", help="remove every codegym container")
    cleanup.set_defaults(func=_cleanup)


def _image_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--packages",
        type=_package_list,
        default=(),
        metavar="A,B",
        help="Debian packages on top of the default set (python3-numpy, "
        "python3-sortedcontainers); the tag names the set",
    )
    parser.add_argument(
        "--tag", default=None, help="image tag (default: codegym-sandbox:<version>-<set hash>)"
    )


def _package_list(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _image(args: argparse.Namespace) -> str:
    from codegym.sandbox.docker import image_tag

    return str(args.tag or image_tag(args.packages))


def _build(args: argparse.Namespace) -> int:
    from codegym.sandbox.image import build_image, image_contents

    start = time.monotonic()
    tag = build_image(
        args.packages, tag=args.tag, method=args.method, suite=args.suite, force=args.force
    )
    took = time.monotonic() - start
    print(f"sandbox image ready: {tag} ({image_contents(tag).summary()}; {took:.0f} s)")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    """Say what works and, for what does not, what to do."""
    from codegym.sandbox.docker import docker_client, missing_image_message
    from codegym.sandbox.image import image_contents

    image = _image(args)
    if args.ray or args.address:
        from codegym.sandbox.ray import doctor

        if not args.ray:
            raise UsageError("--address names the Ray cluster for --ray: add --ray")
        return doctor(args.address, image)
    try:
        client = docker_client(timeout=5)
        version = client.version().get("Version", "?")
        client.close()
        print(f"[ok]   Docker daemon answers (engine {version})")
    except SandboxError as e:
        print(f"[fail] {e}")
        return 1
    try:
        contents = image_contents(image)
    except SandboxError:
        print(f"[fail] {missing_image_message(image, args.packages)}")
        return 1
    if contents.missing:
        print(
            f"[fail] image {image} lacks {', '.join(contents.missing)}: rebuild it with "
            "`codegym sandbox build --force` (with the same --packages and --tag)"
        )
        return 1
    print(f"[ok]   image {image}: {contents.summary()}")
    return 0 if _doctor_run(image) else 1


def _doctor_run(image: str) -> bool:
    """Run one program that imports the default packages; whether it passed."""
    from codegym.sandbox import make_sandbox

    program = "import numpy, sortedcontainers\nprint(sum(map(int, input().split())))\n"
    try:
        with make_sandbox("docker", size=1, image=image) as sb:
            r = sb.run(program, [{"input": "2 3", "output": "5"}])
            transport = _transport(sb)
    except SandboxError as e:
        print(f"[fail] {e}")
        return False
    if not r.passed:
        print(
            f"[fail] the test program did not pass: {r.verdict} {r.message or r.tests[0].message}"
        )
        return False
    print(f"[ok]   a program ran in the sandbox ({r.tests[0].wall_time_s * 1000:.1f} ms)")
    print(transport)
    return True


def _transport(sb: Any) -> str:
    """How the host talks to the sandbox's runners, as a doctor line."""
    from codegym.sandbox.docker import DIRECT_SOCKET_ENV

    kind, why = sb.transport()
    if kind == "direct":
        return "[ok]   the runners talk to this process over the direct socket"
    if why == f"{DIRECT_SOCKET_ENV}=0":
        return f"[ok]   the runners use Docker's attach stream ({why})"
    return (
        "[warn] the runners could not reach the direct socket and use Docker's slower attach "
        f"stream{': ' + why if why else ''}. A daemon on another machine, SELinux labels or "
        "remapped uids cause this"
    )


def _cleanup(args: argparse.Namespace) -> int:
    from codegym.sandbox.docker import remove_stale_containers

    n = remove_stale_containers(all_owners=args.all)
    print(f"removed {n} container(s)")
    return 0
