"""Building the sandbox image: Python 3, its standard library and a set of Debian packages.

Every image holds :data:`~codegym.sandbox.docker.DEFAULT_PACKAGES` (numpy and sortedcontainers,
which interview and contest solutions import); ``build_image(packages=[...])`` (``codegym
sandbox build --packages a,b``) adds more. Each package set has its own tag
(:func:`~codegym.sandbox.docker.image_tag`), and the image lists its set in the
``codegym.packages`` label, which :func:`image_contents` (``codegym sandbox doctor``) reads.

Two routes:

- ``dockerfile``: ``docker build`` from the Dockerfile next to this module (needs a registry
  for the base image, or the base image already loaded).
- ``debootstrap``: a Debian minbase root filesystem with the packages, made by ``debootstrap``
  (from Debian's default mirror) and loaded with ``docker import``. Works where no registry
  can be reached; needs root and the ``debootstrap`` package.

``auto`` uses the Dockerfile when its base image is already present locally, and debootstrap
otherwise, so it never tries to contact a registry on its own.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from codegym.errors import UsageError
from codegym.sandbox.base import SandboxError, SandboxSetupError
from codegym.sandbox.docker import DEFAULT_PACKAGES, PACKAGES_LABEL, docker_client, image_tag
from codegym.sandbox.docker import image_packages as _image_packages

log = logging.getLogger(__name__)

DOCKERFILE = Path(__file__).with_name("Dockerfile")
BASE_IMAGE = "debian:bookworm-slim"
#: Parts of the root filesystem a Python sandbox never needs (keeps the image ~100 MB smaller).
_TRIM = (
    "var/cache/apt",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/zoneinfo-icu",
)
#: Python modules of the default packages, imported by the smoke test and reported by doctor.
_DEFAULT_MODULES = ("numpy", "sortedcontainers")
#: Run inside the image as ``python3 -c _PROBE MODULES PACKAGE...`` (MODULES comma-separated):
#: what it holds, as JSON (Python version, installed Debian packages with their versions, the
#: modules' versions as the candidate's interpreter imports them).
_PROBE = """
import importlib, json, platform, subprocess, sys
packages = sys.argv[2:]
out = subprocess.run(
    ["dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Status}\\n", *packages],
    capture_output=True, text=True,
).stdout
installed = {}
for line in out.splitlines():
    name, version, status = line.split(" ", 2)
    if status == "installed":
        installed[name] = version
modules = {}
for name in sys.argv[1].split(","):
    try:
        modules[name] = getattr(importlib.import_module(name), "__version__", "?")
    except ImportError:
        modules[name] = None
print(json.dumps({"python": platform.python_version(), "packages": installed,
                  "modules": modules}))
"""


@dataclass(frozen=True)
class ImageContents:
    """What a sandbox image holds, read from the image itself.

    Attributes:
        tag: The image.
        size_mb: Its size in MB (10^6 bytes) as ``docker images`` reports it.
        python: Version of its ``python3``.
        wanted: The Debian packages its label says it was built with.
        packages: Installed Debian packages of ``wanted``, name to version.
        modules: Version of each default package's module (``None``: it does not import).
    """

    tag: str
    size_mb: float
    python: str
    wanted: tuple[str, ...]
    packages: dict[str, str]
    modules: dict[str, str | None]

    @property
    def missing(self) -> list[str]:
        """What the image lacks: wanted packages not installed, default modules not importable."""
        lost = [p for p in self.wanted if p not in self.packages]
        return lost + [f"module {m}" for m, v in self.modules.items() if v is None]

    def summary(self) -> str:
        """One line: size, Python, and each package with its version."""
        extras = ", ".join(f"{p} {v}" for p, v in sorted(self.packages.items()) if p != "python3")
        return f"{self.size_mb:.0f} MB, Python {self.python}, {extras or 'no packages'}"


def image_exists(tag: str) -> bool:
    """Whether ``tag`` is present in the local Docker engine."""
    client = docker_client()
    try:
        client.images.get(tag)
        return True
    except Exception:
        return False
    finally:
        client.close()


def build_image(
    packages: Iterable[str] = (),
    *,
    tag: str | None = None,
    method: str = "auto",
    suite: str | None = None,
    force: bool = False,
) -> str:
    """Build the sandbox image and check that it runs Python with its packages; the tag.

    Args:
        packages: Debian packages to add to the default set (``python3-scipy``, ...).
        tag: Image tag to create (default: :func:`~codegym.sandbox.docker.image_tag` of
            ``packages``, which names the set).
        method: ``"auto"``, ``"debootstrap"`` or ``"dockerfile"`` (see the module docstring).
        suite: Debian suite for debootstrap (default: this machine's, else ``bookworm``).
        force: Rebuild even if the image exists.

    Raises:
        UsageError: a package name is malformed or Debian has no such package, or the method
            is unknown.
        SandboxSetupError: the build cannot run here (no root, no debootstrap, no registry,
            no mirror); the message says what to install or run.
        SandboxError: the image was built but does not work.
    """
    wanted = _image_packages(packages)
    tag = tag or image_tag(packages)
    if not force and image_exists(tag):
        log.info("image %s already exists (use --force to rebuild)", tag)
        return tag
    if method == "auto":
        method = "dockerfile" if image_exists(BASE_IMAGE) else "debootstrap"
    if method == "dockerfile":
        _build_from_dockerfile(tag, wanted)
    elif method == "debootstrap":
        _build_with_debootstrap(tag, wanted, suite or _host_suite())
    else:
        raise UsageError(f"unknown build method {method!r}: use auto, debootstrap or dockerfile")
    contents = image_contents(tag)
    if contents.missing:
        raise SandboxError(f"the image {tag} was built but lacks {', '.join(contents.missing)}")
    log.info("image %s: %s", tag, contents.summary())
    return tag


def image_contents(tag: str) -> ImageContents:
    """Read what ``tag`` holds by running a probe in it (no network).

    Raises:
        SandboxSetupError: no daemon answers or the image is missing.
        SandboxError: the image does not run ``python3``.
    """
    client = docker_client()
    try:
        try:
            image = client.images.get(tag)
        except Exception:
            raise SandboxSetupError(f"the image {tag} is missing") from None
        label = (image.labels or {}).get(PACKAGES_LABEL)
        # Images from before the label held python3 alone.
        wanted = tuple(label.split()) if label else ("python3", *DEFAULT_PACKAGES)
        try:
            out = client.containers.run(
                tag,
                ["python3", "-c", _PROBE, ",".join(_DEFAULT_MODULES), *wanted],
                remove=True,
                network_mode="none",
            )
            probe = json.loads(out)
        except Exception as e:
            raise SandboxError(f"the image {tag} does not run python3 properly: {e}") from None
        return ImageContents(
            tag=tag,
            size_mb=image.attrs.get("Size", 0) / 1e6,
            python=probe["python"],
            wanted=wanted,
            packages=probe["packages"],
            modules=probe["modules"],
        )
    finally:
        client.close()


def _build_from_dockerfile(tag: str, packages: tuple[str, ...]) -> None:
    client = docker_client(timeout=600)
    try:
        log.info("building %s from %s with %s", tag, DOCKERFILE, " ".join(packages))
        client.images.build(
            path=str(DOCKERFILE.parent),
            dockerfile=DOCKERFILE.name,
            tag=tag,
            rm=True,
            buildargs={"PACKAGES": " ".join(packages)},
            labels={PACKAGES_LABEL: " ".join(packages)},
        )
    except Exception as e:
        raise SandboxSetupError(
            f"docker build of {tag} failed ({e}); without a registry use "
            "`codegym sandbox build --method debootstrap` (as root)"
        ) from None
    finally:
        client.close()


def _host_suite() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME=") and line.split("=", 1)[1].strip():
                codename = line.split("=", 1)[1].strip().strip('"')
                if codename in ("bookworm", "trixie", "bullseye"):
                    return codename
    except OSError:
        pass
    return "bookworm"


def _build_with_debootstrap(tag: str, packages: tuple[str, ...], suite: str) -> None:
    if os.geteuid() != 0:
        raise SandboxSetupError(
            "building the image with debootstrap needs root: run `codegym sandbox build` as root"
        )
    if shutil.which("debootstrap") is None:
        raise SandboxSetupError(
            "debootstrap is not installed: `apt-get install -y debootstrap` (as root), "
            "or build from the Dockerfile where a registry is reachable"
        )
    with tempfile.TemporaryDirectory(prefix="codegym-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        cache = _deb_cache()
        log.info("debootstrap %s minbase with %s into %s", suite, " ".join(packages), rootfs)
        proc = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(packages)}",
                f"--cache-dir={cache}",
                suite,
                rootfs,
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise _debootstrap_error(proc.stdout + proc.stderr, proc.returncode, suite)
        for part in _TRIM:
            shutil.rmtree(rootfs / part, ignore_errors=True)
        tarball = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
        repository, _, version = tag.partition(":")
        client = docker_client(timeout=600)
        try:
            log.info("docker import %s", tag)
            client.api.import_image_from_file(
                str(tarball),
                repository=repository,
                tag=version or "latest",
                changes=[
                    "ENV LANG=C.UTF-8",
                    'CMD ["python3"]',
                    f'LABEL {PACKAGES_LABEL}="{" ".join(packages)}"',
                ],
            )
        finally:
            client.close()


def _deb_cache() -> Path:
    """Where debootstrap keeps the packages it downloaded, so a rebuild or an image with a few
    more packages downloads only what is new."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cache = (base / "codegym" / "debootstrap").resolve()
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def _debootstrap_error(output: str, status: int, suite: str) -> Exception:
    """The error for a failed debootstrap: the user's (a package Debian lacks) or the machine's."""
    errors = [line for line in output.splitlines() if line.startswith("E:")]
    unknown = re.search(r"Couldn't find these debs: (.+)", output)
    if unknown:
        return UsageError(
            f"Debian {suite} (main) has no package {unknown.group(1).strip()}: check the name "
            "with `apt-cache search` and pass it to --packages as apt-get install takes it"
        )
    last = output.strip().splitlines()[-1:] or ["no output"]
    detail = "; ".join(errors) or last[0]
    return SandboxSetupError(
        f"debootstrap failed (exit {status}): {detail}; it needs root and a reachable Debian mirror"
    )
