"""The ``watch`` scenario: the watch page in headless Chromium, swiping real videos.

Measured per run (a link and a preload setting): the time from a card becoming current to its
first frame shown (the page's own clock: ``requestVideoFrameCallback`` after the card is selected,
``window.clipstreamWatch`` in http/static/feed.js), cards whose first frame never came while they
were current (failures), stalls after the first frame (a wait for data of 50 ms or more), and the
time from pressing "Sign in" to the first feed card on screen. Links: loopback, and Chromium's
network emulation (CDP ``Network.emulateNetworkConditions``) of a 4G-like (9 Mbit/s, 40 ms) and a
3G-like (1.6 Mbit/s, 150 ms) link. Preloading: the page's default (the next two cards) and none
(``/?preload=0``), and the next two loaded whole (``ahead=auto``) against only their header and
first frame (``ahead=metadata``, the page's default), each in a fresh browser context (empty cache). The page
picks each card's rendition (main 720x1280 or low 360x640) from the throughput it measured (page
variant ``abr``); variant ``main`` is the page before renditions (``/?abr=0&posters=all``: the main
rendition only, its preloads always, every card's poster at once) for a before/after on the same
corpus, and ``allposters`` the adaptive page with every poster at once (``/?posters=all``).

The corpus is seeded (:mod:`clipstream.workers.seed`), into a keyspace and Redis database of the
scenario's: as many distinct real clips as cards, made with ffmpeg and transcoded with the running
media settings (one shared object would be fetched once and then played from the browser's cache).
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from typing import Any, Awaitable, Callable, Sequence

__all__ = ["LINKS", "PRELOADS", "WATCH_ENV", "run_watch", "seed_corpus", "summarize"]

#: name -> (download bits/s, round-trip ms); None: loopback, no emulation
LINKS: dict[str, tuple[int, int] | None] = {"loopback": None, "4g": (9_000_000, 40), "3g": (1_600_000, 150)}
#: the scenario's own data, beside the bench's (clipstream_bench, Redis db 14)
WATCH_ENV = {"CLIPSTREAM_CQL_KEYSPACE": "clipstream_watch", "CLIPSTREAM_REDIS_URL": "redis://127.0.0.1:6379/13"}
#: seconds on each card before the next swipe (a viewer who watches, not one who flicks)
DWELL_S = 3.0
#: the clips: phone-shaped, as long as a short video, varied so that no two objects are alike
CLIP_SECONDS = 8.0
CLIP_SIZE = (720, 1280)

Progress = Callable[[str], None]

_FIRST_CARD = """() => new Promise((resolve) => {
  const seen = () => document.querySelector('#feed .card');
  if (seen()) return resolve(performance.now());
  const mo = new MutationObserver(() => { if (seen()) { mo.disconnect(); resolve(performance.now()); } });
  mo.observe(document.body, {subtree: true, childList: true});
})"""


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 1)


def summarize(cards: list[dict[str, Any]]) -> dict[str, Any]:
    """First-frame percentiles, failures and stalls of the cards a run left."""
    frames = [c["first_frame_ms"] for c in cards if c.get("first_frame_ms") is not None]
    return {
        "cards": len(cards),
        "first_frame_p50_ms": _pct(frames, 0.5), "first_frame_p95_ms": _pct(frames, 0.95),
        "first_frame_max_ms": round(max(frames), 1) if frames else None,
        "failures": len(cards) - len(frames),
        "stalls": sum(c.get("stalls", 0) for c in cards),
        "stall_ms": sum(c.get("stall_ms", 0) for c in cards),
        "cards_with_stalls": sum(1 for c in cards if c.get("stalls")),
        "cards_low": sum(1 for c in cards if c.get("rendition") == "low"),
    }  # fmt: skip


async def seed_corpus(url: str, cql: Any, redis: Any, objects: Any, media: Any, count: int,
                      progress: Progress) -> list[int]:
    """``count`` ready videos by four creators, seeded by :mod:`clipstream.workers.seed` over as many
    distinct real clips (transcoded as an upload is, with the running settings); their ids."""
    from clipstream.cli.apiclient import ApiClient
    from clipstream.storage.cache import Cache
    from clipstream.storage.ids import new_id
    from clipstream.storage.repos import VideoRepo
    from clipstream.workers.seed import seed_media, seed_ready_videos

    suffix = new_id() % 10**8
    creators = [await ApiClient(url).signup(f"watchc{suffix}{i}") for i in range(4)]
    try:
        authors = {int(c.user_id or 0): f"watchc{suffix}{i}" for i, c in enumerate(creators)}
    finally:
        for c in creators:
            await c.close()
    started = time.monotonic()
    # a clip each, so that no card is played from the browser's cache of an earlier one
    clips = await seed_media(objects, media, count, seconds=CLIP_SECONDS, size=CLIP_SIZE)
    progress(f"watch: {count} seed clips transcoded and stored in {time.monotonic() - started:.0f} s "
             f"({sum(c.duration for c in clips) / count:.1f} s each)")
    ids = await seed_ready_videos(VideoRepo(cql), Cache(redis), authors, -(-count // len(authors)), clips)
    await asyncio.sleep(2.0)  # the candidate pools' refresh
    return ids


#: page variant -> what it adds to the page's URL
PAGES = {"abr": "", "main": "&abr=0&posters=all", "allposters": "&posters=all"}


async def _one_run(browser: Any, url: str, link: str, preload: int, ahead: str, variant: str, swipes: int,
                   progress: Progress) -> dict[str, Any]:
    from clipstream.cli.apiclient import ApiClient
    from clipstream.storage.ids import new_id

    name, secret = f"watchv{new_id() % 10**9}", secrets.token_urlsafe(12)
    viewer = ApiClient(url)
    await viewer.call("POST", "/v1/auth/register",
                      {"username": name, "email": f"{name}@example.test", "password": secret})
    await viewer.close()
    context = await browser.new_context(viewport={"width": 412, "height": 860})
    try:
        page = await context.new_page()
        if LINKS[link] is not None:
            bits, rtt = LINKS[link]  # type: ignore[misc]
            cdp = await context.new_cdp_session(page)
            await cdp.send("Network.enable")
            await cdp.send("Network.emulateNetworkConditions", {
                "offline": False, "latency": rtt, "downloadThroughput": bits / 8, "uploadThroughput": bits / 8})
        await page.goto(f"{url}/?preload={preload}&ahead={ahead}{PAGES[variant]}")
        await page.fill("#login-form [name=username]", name)
        await page.fill("#login-form [name=password]", secret)
        first_card = asyncio.ensure_future(page.evaluate(_FIRST_CARD))
        clicked = await page.evaluate("() => performance.now()")
        await page.click("#login-form button[type=submit]")
        shown = await asyncio.wait_for(first_card, 60)
        signed_in = await page.evaluate("() => window.clipstreamWatch.signedInAt")
        for _ in range(swipes):
            await asyncio.sleep(DWELL_S)
            await page.keyboard.press("ArrowDown")
        await asyncio.sleep(DWELL_S)
        await page.evaluate("() => { location.hash = '#/upload'; }")  # leaves the last card
        await asyncio.sleep(0.5)
        log = await page.evaluate("() => window.clipstreamWatch")
    finally:
        await context.close()
    cards = log["cards"]  # every card that was current, in order (the last one left by the hash change)
    figures = {"link": link, "preload": preload, "ahead": ahead if preload else "-", "page": variant,
               **summarize(cards),
               "sign_in_to_first_card_ms": round(shown - clicked, 1),
               "login_ms": round(signed_in - clicked, 1) if signed_in else None,
               "signed_in_to_first_card_ms": round(shown - signed_in, 1) if signed_in else None,
               # the page shows the page that came with the login's answer (no request of its own):
               # then the feed's time is inside login_ms
               "first_page_with_login": bool(log["pages"] and log["pages"][0].get("withLogin")),
               "first_page_request_ms": round(log["pages"][0]["ms"], 1)
               if log["pages"] and not log["pages"][0].get("withLogin") else None}
    figures["per_card"] = [[c["index"], c["first_frame_ms"] and round(c["first_frame_ms"], 1), c["stalls"],
                            c["stall_ms"], c["preloaded_state"], c.get("rendition"), c.get("estimate_kbps")]
                           for c in cards]
    figures["throughput_kbps_at_end"] = round(log["throughput"]["bps"] / 1000) if log.get("throughput", {}).get("bps") else None
    progress(f"watch {link}, preload {preload} {figures['ahead']}, page {variant}: "
             f"first frame p50 {figures['first_frame_p50_ms']} ms, "
             f"p95 {figures['first_frame_p95_ms']} ms, max {figures['first_frame_max_ms']} ms, "
             f"failures {figures['failures']}/{figures['cards']}, stalls {figures['stalls']}, "
             f"low rendition {figures['cards_low']}/{figures['cards']}, "
             f"first card {figures['sign_in_to_first_card_ms']} ms after the click "
             f"({figures['signed_in_to_first_card_ms']} ms after the login's answer)")
    return figures


#: (cards preloaded after the current one, how much of each): the page's default first
PRELOADS: tuple[tuple[int, str], ...] = ((2, "metadata"), (2, "auto"), (0, "metadata"))
#: one card of a per_card row: its fields in order
PER_CARD_FIELDS = ["index", "first_frame_ms", "stalls", "stall_ms", "readyState when it became current (0: not attached)",
                   "rendition played (main, low)", "throughput estimate when its rendition was chosen, kbit/s"]


async def run_watch(url: str, progress: Progress, seed: Callable[[int], Awaitable[Any]], swipes: int = 32,
                    links: tuple[str, ...] = tuple(LINKS),
                    preloads: tuple[tuple[int, str], ...] = PRELOADS,
                    only: Sequence[tuple[str, int, str, str]] = ()) -> dict[str, Any]:
    """Seed the corpus (``seed(count)``), then every (link, preload) run (or those of ``only``) in a
    fresh context of one headless Chromium."""
    from playwright.async_api import async_playwright

    from clipstream.stack.apt_tools import chromium_binary

    chromium = chromium_binary()
    if not chromium:
        raise RuntimeError("chromium missing: `clipstream stack up` installs it")
    started = time.monotonic()
    await seed(swipes + 4)
    runs = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium,
                                          args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            plan = list(only) or [(link, preload, ahead, "abr") for link in links for preload, ahead in preloads]
            for link, preload, ahead, variant in plan:
                runs.append(await _one_run(browser, url, link, preload, ahead, variant, swipes, progress))
        finally:
            await browser.close()
    return {"swipes": swipes, "per_card_fields": PER_CARD_FIELDS, "dwell_s": DWELL_S,
            "clip": f"{CLIP_SIZE[0]}x{CLIP_SIZE[1]}, {CLIP_SECONDS:g} s+ (low rendition 360x640)",
            "runs": runs, "elapsed_s": round(time.monotonic() - started, 1),
            "first_frame_p50_all_ms": statistics.median(
                [r["first_frame_p50_ms"] for r in runs if r["first_frame_p50_ms"] is not None] or [0])}
