"""`clipstream demo`: fills a running system with users, real videos, follows and likes, through the API."""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path

import click

from clipstream.cli.apiclient import ApiClient

__all__ = ["demo_cmd"]

NAMES = ["ava", "ben", "chloe", "dev", "emma", "finn", "gia", "hugo", "iris", "jon", "kai", "lena"]
PASSWORD = "clipstream-demo"


async def _demo(api: str, users: int, videos: int, seed: int) -> None:
    from clipstream.media.testsrc import make_test_video

    rng = random.Random(seed)
    clients = [await ApiClient(api).signup(f"demo_{NAMES[i % len(NAMES)]}{i // len(NAMES) or ''}", PASSWORD)
               for i in range(users)]
    click.echo(f"{len(clients)} users (password {PASSWORD!r}): " + ", ".join(
        f"demo_{NAMES[i % len(NAMES)]}{i // len(NAMES) or ''}" for i in range(users)))
    uploaded: list[tuple[ApiClient, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, client in enumerate(clients):
            for k in range(videos):
                path = Path(tmp) / f"{n}-{k}.mp4"
                landscape = rng.random() < 0.2
                await make_test_video(path, seconds=rng.uniform(3, 8), width=1280 if landscape else 540,
                                      height=720 if landscape else 960)
                uploaded.append((client, await client.upload(path)))
    click.echo(f"{len(uploaded)} videos uploaded; waiting for processing")
    ready = []
    for client, vid in uploaded:
        video = await client.wait_processed(vid)
        if video["status"] == "ready":
            ready.append(vid)
        else:
            click.echo(f"video {vid}: {video['status']} {video.get('failure_reason') or ''}")
    follows = likes = 0
    for client in clients:
        for other in rng.sample(clients, k=min(3, len(clients))):
            if other is not client:
                await client.follow(other.user_id or "")
                follows += 1
        for vid in rng.sample(ready, k=min(len(ready), rng.randint(1, max(1, len(ready) // 2)))):
            await client.like(vid)
            likes += 1
    click.echo(f"{len(ready)} videos ready, {follows} follows, {likes} likes. Try:")
    click.echo(f"  curl -s -X POST {api}/v1/auth/login -H 'content-type: application/json' "
               f"-d '{{\"username\":\"demo_ava\",\"password\":\"{PASSWORD}\"}}'")
    for client in clients:
        await client.close()


@click.command("demo")
@click.option("--api", default="http://127.0.0.1:8000", show_default=True, help="base URL of a running API")
@click.option("--users", default=8, show_default=True)
@click.option("--videos", default=2, show_default=True, help="videos per user")
@click.option("--seed", default=7, show_default=True)
def demo_cmd(api: str, users: int, videos: int, seed: int) -> None:
    """Create demo users, upload real generated videos, follow and like, so the feed is alive at once."""
    asyncio.run(_demo(api, users, videos, seed))
