"""`up`, `down` and `status` over all services: parallel installs, starts in dependency order."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from clipstream.stack.base import Service, StackContext, StackError, Status
from clipstream.stack.cassandra_service import CassandraService
from clipstream.stack.apt_tools import ChromiumTool, FfmpegTool, VegetaTool, WrkTool
from clipstream.stack.installers import file_lock
from clipstream.stack.minio_service import MinioService
from clipstream.stack.nats_service import NatsService
from clipstream.stack.redis_service import RedisService

__all__ = ["SERVICES", "down", "make_context", "select", "status", "up"]

SERVICES: dict[str, type[Service]] = {
    "redis": RedisService,
    "nats": NatsService,
    "cassandra": CassandraService,
    "minio": MinioService,
    "ffmpeg": FfmpegTool,
    "chromium": ChromiumTool,
    "wrk": WrkTool,
    "vegeta": VegetaTool,
}


def make_context() -> StackContext:
    from clipstream.config import get_settings

    return StackContext(get_settings())


def select(only: str | None) -> list[str]:
    """Service names to act on, in SERVICES order, dependencies of the chosen ones included."""
    if not only:
        return list(SERVICES)
    wanted = {s.strip() for s in only.split(",") if s.strip()}
    unknown = wanted - SERVICES.keys()
    if unknown:
        raise StackError(f"unknown service(s) {sorted(unknown)}; known: {', '.join(SERVICES)}")
    todo = list(wanted)
    while todo:
        for dep in SERVICES[todo.pop()].deps:
            if dep not in wanted:
                wanted.add(dep)
                todo.append(dep)
    return [n for n in SERVICES if n in wanted]


def up(ctx: StackContext, names: list[str]) -> list[Status]:
    """Install what is missing (in parallel), start what is not running (dependencies first), check all."""
    services = {n: SERVICES[n](ctx) for n in names}
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    ready: dict[str, threading.Event] = {n: threading.Event() for n in names}
    failed: dict[str, str] = {}

    def pipeline(svc: Service) -> None:
        try:
            svc.ensure_installed()
            for dep in svc.deps:
                if dep in ready:
                    ready[dep].wait()
                    if dep in failed:
                        raise StackError(f"{svc.name}: not started because {dep} failed")
            svc.ensure_running()
        except Exception as exc:  # noqa: BLE001 - reported per service, the others go on
            failed[svc.name] = str(exc)
            ctx.log(svc.name, f"FAILED: {exc}", err=True)
        finally:
            ready[svc.name].set()

    with file_lock(ctx.run_dir / "stack.lock"):
        with ThreadPoolExecutor(max_workers=len(services), thread_name_prefix="stack") as pool:
            futures: list[Future[None]] = [pool.submit(pipeline, s) for s in services.values()]
            for f in futures:
                f.result()
    if failed:
        raise StackError("failed: " + ", ".join(sorted(failed)))
    return [services[n].status() for n in names]


def down(ctx: StackContext, names: list[str], wipe: bool = False) -> None:
    """Stop our processes, dependents before what they depend on; with ``wipe`` delete their data."""
    services = {n: SERVICES[n](ctx) for n in names}
    remaining = set(names)
    with file_lock(ctx.run_dir / "stack.lock"):
        while remaining:
            # a wave: every remaining service no remaining service depends on
            wave = [n for n in names if n in remaining and not any(n in services[o].deps for o in remaining)]
            if not wave:
                raise StackError(f"dependency cycle among {sorted(remaining)}")

            def stop_one(name: str) -> None:
                t = time.monotonic()
                svc = services[name]
                if svc.has_process:
                    how = svc.stop()
                    ctx.log(name, f"{how} in {time.monotonic() - t:.1f}s")
                if wipe:
                    svc.wipe()
                    if svc.wipe_paths():
                        ctx.log(name, "data wiped: " + ", ".join(str(p) for p in svc.wipe_paths()))

            with ThreadPoolExecutor(max_workers=len(wave)) as pool:
                list(pool.map(stop_one, wave))
            remaining -= set(wave)


def status(ctx: StackContext, names: list[str]) -> list[Status]:
    services = [SERVICES[n](ctx) for n in names]
    with ThreadPoolExecutor(max_workers=len(services)) as pool:
        return list(pool.map(lambda s: s.status(), services))
