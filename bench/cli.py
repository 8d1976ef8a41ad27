"""`clipstream bench`: the benchmark suite of BENCHMARKS.md."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["bench_cmd"]


@click.command("bench")
@click.option("--quick", is_flag=True, help="5 s wrk runs and one upload round (for development)")
@click.option("--scenarios", "only", default="", metavar="NAMES",
              help="comma separated subset: refs,feed,like,mixed,openloop,growth,upload,taste,watch,actors "
                   "(default: all but watch, which runs when named)")
@click.option("--profile", is_flag=True, help="py-spy every system process during the feed and like runs")
@click.option("--logs", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="keep the servers' logs in DIR (default: a temporary directory, removed)")
@click.option("--watch-runs", "watch_runs", default="", metavar="RUNS",
              help="only these runs of the watch scenario, comma separated LINK:CARDS:HOW[:PAGE], e.g. "
                   "3g:2:metadata,loopback:0:metadata (links loopback, 4g, 3g; default: every link and preload); "
                   "PAGE main: the page before renditions (main rendition only, CARDS preloads always, every "
                   "poster at once), allposters: adaptive but every poster at once")
def bench_cmd(quick: bool, only: str, profile: bool, logs: Path | None, watch_runs: str) -> None:
    """Seed a corpus, start clipstream and the reference servers, run every scenario, print and save the figures.

    Data goes to the keyspace clipstream_bench and Redis database 14 (wiped and rebuilt each run).
    """
    import asyncio
    import logging
    import os

    from clipstream.bench.results import format_table, result_path, rows_of, write_json
    from clipstream.bench.runner import ALL_SCENARIOS, DEFAULT_SCENARIOS, run_bench
    from clipstream.bench.system import BENCH_ENV

    wanted = [s.strip() for s in only.split(",") if s.strip()] or list(DEFAULT_SCENARIOS)
    unknown = set(wanted) - set(ALL_SCENARIOS)
    if unknown:
        raise click.UsageError(f"unknown scenarios: {', '.join(sorted(unknown))}")
    runs = []
    for item in filter(None, (w.strip() for w in watch_runs.split(","))):
        link, cards, how, page = (item.split(":") + ["", "", ""])[:4]
        if (link not in ("loopback", "4g", "3g") or not cards.isdigit() or how not in ("metadata", "auto")
                or page not in ("", "main", "allposters")):
            raise click.UsageError(f"--watch-runs: {item!r} is not LINK:CARDS:HOW[:PAGE] (e.g. 3g:2:metadata)")
        runs.append((link, int(cards), how, page or "abr"))
    # Before anything reads settings (they are cached): this process and its children use the
    # bench keyspace, Redis database and ports, whatever the shell says.
    os.environ.update(BENCH_ENV)
    logging.getLogger("cassandra").setLevel(logging.WARNING)  # connection chatter would bury the progress
    results = asyncio.run(run_bench(quick, wanted, lambda line: click.echo(line, err=True), profile, logs, runs))
    click.echo(format_table(rows_of(results)))
    path = write_json(results, result_path())
    click.echo(f"\nresults: {path}  ({results['elapsed_s']:.0f} s)")
