"""Installing into the cache: Debian packages, `go install` of pinned modules, Maven resolution.

Everything downloaded or built lands under ``settings.stack.cache_dir``, keyed by version, and is
marked complete by a stamp written last, so an interrupted install is redone, a finished one never.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import threading
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Iterator

from clipstream.stack import pins
from clipstream.stack.base import StackContext, StackError, tail

__all__ = ["apt_install", "cassandra_lib_dir", "go_binary", "go_install", "maven_resolve", "which"]

_apt_lock = threading.Lock()
_apt_updated = False


def which(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/bin") / name, Path("/usr/sbin") / name) if p.exists()), None
    )


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock across processes (two `stack up` at once install each thing once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(ctx: StackContext, what: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    log = ctx.cache_dir / "logs" / f"{what}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        fh.write(f"\n$ {' '.join(argv)}\n".encode())
        fh.flush()
        rc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})}, cwd=cwd).returncode
    if rc != 0:
        raise StackError(f"{what}: `{' '.join(argv)}` exited {rc}; last lines of {log}:\n{tail(log)}")


def apt_install(ctx: StackContext, package: str) -> None:
    """`apt-get install -y <package>` (one apt at a time; `apt-get update` once per command)."""
    global _apt_updated
    apt = which("apt-get")
    if apt is None:
        raise StackError(f"{package}: apt-get not found; install {package} by hand")
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if which("sudo") else None)
    if prefix is None:
        raise StackError(f"{package}: not root and no sudo; run `apt-get install -y {package}` as root")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    with _apt_lock:
        if not _apt_updated:
            _run(ctx, "apt", [*prefix, apt, "update"], env)
            _apt_updated = True
        _run(ctx, "apt", [*prefix, apt, "install", "-y", "--no-install-recommends", package], env)


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        raise StackError("go not found (looked in PATH and /usr/local/go/bin)")
    return go


def go_binary(ctx: StackContext, name: str, version: str) -> Path | None:
    """The cached binary built from ``version``, or None if it is missing or from another version."""
    binary = ctx.cache_dir / "go" / "bin" / name
    stamp = binary.with_name(f".{name}.version")
    if binary.exists() and stamp.exists() and stamp.read_text().strip() == version:
        return binary
    return None


def go_install(ctx: StackContext, name: str, module: str, version: str) -> Path:
    """`go install module@version` with GOPATH, GOBIN, module and build caches all under the cache dir."""
    root = ctx.cache_dir / "go"
    with file_lock(root / f".{name}.lock"):
        if (done := go_binary(ctx, name, version)) is not None:
            return done
        env = {
            "GOPATH": str(root),
            "GOBIN": str(root / "bin"),
            "GOMODCACHE": str(root / "pkg" / "mod"),
            "GOCACHE": str(root / "build-cache"),
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
            "GOFLAGS": "-buildvcs=false",
        }
        _run(ctx, f"go-install-{name}", [_go(), "install", f"{module}@{version}"], env)
        binary = root / "bin" / name
        binary.with_name(f".{name}.version").write_text(version)
        return binary


def cassandra_lib_dir(ctx: StackContext) -> Path:
    return ctx.cache_dir / "cassandra" / pins.CASSANDRA_VERSION / "lib"


def _stamp(lib: Path) -> Path:
    return lib.with_name(".complete")


def cassandra_resolved(ctx: StackContext) -> bool:
    return _stamp(cassandra_lib_dir(ctx)).exists()


def maven_resolve(ctx: StackContext) -> Path:
    """cassandra-all and its runtime dependencies copied into <cache>/cassandra/<version>/lib by Maven."""
    lib = cassandra_lib_dir(ctx)
    home = lib.parent
    with file_lock(home / ".lock"):
        if _stamp(lib).exists():
            return lib
        mvn = which("mvn")
        if mvn is None:
            raise StackError("cassandra: mvn not found (apt-get install -y maven)")
        template = resources.files("clipstream.stack").joinpath("files/cassandra-pom.xml").read_text()
        pom = template.replace("@CASSANDRA_VERSION@", pins.CASSANDRA_VERSION).replace(
            "@DEPENDENCY_PLUGIN_VERSION@", pins.MAVEN_DEPENDENCY_PLUGIN_VERSION
        )
        (home / "pom.xml").write_text(pom)
        staging = home / "lib.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        _run(ctx, "maven-cassandra", [
            mvn, "-B", "-q", "-f", str(home / "pom.xml"),
            f"-Dmaven.repo.local={ctx.cache_dir / 'maven' / 'repository'}",
            f"org.apache.maven.plugins:maven-dependency-plugin:{pins.MAVEN_DEPENDENCY_PLUGIN_VERSION}:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
        ], cwd=home)
        if not (staging / f"{pins.CASSANDRA_ARTIFACT}-{pins.CASSANDRA_VERSION}.jar").exists():
            raise StackError(f"cassandra: Maven finished but {staging} has no {pins.CASSANDRA_ARTIFACT} jar")
        shutil.rmtree(lib, ignore_errors=True)
        staging.rename(lib)
        _stamp(lib).write_text(pins.CASSANDRA_VERSION)
        return lib
