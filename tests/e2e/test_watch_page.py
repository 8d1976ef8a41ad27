"""The watch page in a real browser (Debian's Chromium driven by Playwright) against the running
system: sign up, upload a real clip and see it become ready, swipe through ten videos each
actually playing, like, follow, a profile grid, a hashtag grid, sign out.

Screenshots of every step go to ``test-artifacts/watch-page/`` (gitignored; set
``CLIPSTREAM_TEST_ARTIFACTS`` to move it). Playwright drives the system Chromium through
``executable_path``: ``playwright install`` (a browser download) is never needed.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from clipstream.cli.apiclient import ApiClient
from clipstream.media.testsrc import make_test_video
from clipstream.stack.apt_tools import chromium_binary
from clipstream.storage.ids import new_id
from clipstream.storage.objects import ObjectStore
from clipstream.workers.seed import seed_media

# First in the session: the other e2e tests seed ready videos (no transcode) whose cards all point
# at one media object, and with them in the feed this test failed in three full-suite runs of
# three (cards that never loaded), while it passed every time on the fresh system.
pytestmark = [pytest.mark.integration, pytest.mark.first]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CLIPSTREAM_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "watch-page"
CLIPS = 12  # videos of another creator, so the viewer's feed has ten to swipe through
PASSWORD = "correct horse battery"
#: a phone-sized window with touch, as the page is meant to be held
VIEWPORT = {"width": 412, "height": 860}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    chromium = chromium_binary()
    assert chromium, "chromium missing: `clipstream stack up` installs it (Debian package chromium)"
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture(scope="module")
async def corpus(system, settings, tmp_path_factory) -> dict:
    """A creator with CLIPS ready videos, each captioned with one shared hashtag.

    Other e2e tests seed ready videos without a transcode (``workers.seed``); they all name one
    media object, ``seed/shared.mp4``. In the shared system they reach this viewer's feed too, and a
    browser cannot play a missing file (in a full run card 0 was one of them: readyState 0 for 20 s):
    the seed's real clip is put there, as a seeded deployment does."""
    suffix = new_id() % 10**8
    tag = f"watch{suffix}"
    creator = await ApiClient(system).signup(f"cara{suffix}")
    folder = tmp_path_factory.mktemp("clips")
    clips = [folder / f"c{i}.mp4" for i in range(CLIPS)]
    await asyncio.gather(*(make_test_video(c, seconds=4.0, width=360, height=640) for c in clips))
    await seed_media(ObjectStore.from_settings(settings.minio), settings.media)
    ids = [await creator.upload(c, caption=f"clip {i} #{tag} #e2e") for i, c in enumerate(clips)]
    videos = await asyncio.gather(*(creator.wait_processed(v) for v in ids))
    assert all(v["status"] == "ready" for v in videos), [v["status"] for v in videos]
    try:
        yield {"creator": creator, "tag": tag, "ids": ids, "suffix": suffix, "folder": folder}
    finally:
        await creator.close()


async def local_only(context) -> list[str]:  # noqa: ANN001
    """Abort every request that leaves this machine (a CDN would be one): the page must not need it."""
    refused: list[str] = []

    async def guard(route) -> None:  # noqa: ANN001
        host = httpx.URL(route.request.url).host
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort()

    await context.route("**/*", guard)
    return refused


class Shots:
    """Numbered screenshots of one run."""

    def __init__(self, page) -> None:  # noqa: ANN001
        self.page, self.n = page, 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async def take(self, name: str) -> Path:
        self.n += 1
        path = ARTIFACTS / f"{self.n:02d}-{name}.png"
        await self.page.screenshot(path=str(path))
        return path


async def current_index(page) -> int:  # noqa: ANN001
    return int(await page.locator("#feed").get_attribute("data-current") or "-1")


async def wait_playing(page, index: int, timeout: float = 20.0) -> tuple[float, float]:  # noqa: ANN001
    """The card's video plays: its currentTime moves forward between two looks 400 ms apart."""
    video = page.locator(f'#feed .card[data-index="{index}"] video')
    deadline = time.monotonic() + timeout
    while True:
        t1 = await video.evaluate("v => v.currentTime")
        await asyncio.sleep(0.4)
        state = await video.evaluate("v => ({t: v.currentTime, paused: v.paused, muted: v.muted, ready: v.readyState})")
        if not state["paused"] and state["ready"] >= 2 and state["t"] > t1 > 0:
            return t1, state["t"]
        assert time.monotonic() < deadline, f"card {index} is not playing: {state}, before {t1}"


async def go_to_author(page, author_id: str, most: int = 30) -> int:  # noqa: ANN001
    """Make the loaded card of ``author_id`` nearest the current one current (swiping on if no
    loaded card is theirs); its index."""
    for _ in range(most):
        here = await current_index(page)
        authors = await page.locator("#feed .card").evaluate_all("cs => cs.map(c => c.dataset.authorId)")
        theirs = [i for i, a in enumerate(authors) if a == author_id]
        if theirs:
            goal = min(theirs, key=lambda i: abs(i - here))
            while (here := await current_index(page)) != goal:
                await page.keyboard.press("ArrowDown" if goal > here else "ArrowUp")
                step = here + (1 if goal > here else -1)
                await poll_attr(page, step)
            return goal
        await page.keyboard.press("ArrowDown")
        await poll_attr(page, here + 1)
    raise AssertionError(f"no video of {author_id} in {most} swipes")


async def poll_attr(page, index: int) -> None:  # noqa: ANN001
    from playwright.async_api import expect

    await expect(page.locator("#feed")).to_have_attribute("data-current", str(index), timeout=10_000)


async def poll(fn, what: str, timeout: float = 15.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        value = await fn()
        if value:
            return value
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.3)


async def test_a_viewer_signs_up_uploads_swipes_likes_follows_and_signs_out(system, browser, corpus) -> None:
    from playwright.async_api import expect

    context = await browser.new_context(viewport=VIEWPORT, has_touch=True)
    refused = await local_only(context)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    shots = Shots(page)
    try:
        # --- sign up -------------------------------------------------------------------------
        await page.goto(system + "/")
        await expect(page.locator("#login-form")).to_be_visible()
        await shots.take("sign-in")
        viewer = f"vera{corpus['suffix']}"
        await page.click("#to-register")
        await page.fill("#register-form [name=username]", viewer)
        await page.fill("#register-form [name=email]", f"{viewer}@example.test")
        await page.fill("#register-form [name=password]", PASSWORD)
        await page.click("#register-form button[type=submit]")
        await expect(page.locator("#feed-view")).to_be_visible(timeout=15_000)

        # --- upload a real clip from the browser ----------------------------------------------
        clip = corpus["folder"] / "mine.mp4"
        await make_test_video(clip, seconds=3.0, width=360, height=640)
        await page.click("nav a[data-nav=upload]")
        await page.set_input_files("#upload-form [name=file]", str(clip))
        await page.fill("#upload-form [name=caption]", f"my first #{corpus['tag']}")
        await page.click("#upload-form button[type=submit]")
        status = page.locator("#upload-status")
        await expect(status).to_have_attribute("data-state", "ready", timeout=120_000)
        await expect(status).to_contain_text("Ready")
        await shots.take("upload-ready")

        # --- the feed: ten videos, each playing ------------------------------------------------
        await page.click("nav a[data-nav=feed]")
        await expect(page.locator("#feed .card").first).to_be_visible(timeout=15_000)
        await expect(page.locator("#feed")).to_have_attribute("data-current", "0", timeout=15_000)
        # In the whole suite the feed also holds other tests' seeded videos, which all point at one
        # media object: two cards loading the same URL at once were not played by Chromium (card 1,
        # readyState 0 for 20 s, "This video could not be played"). Real uploads have a file each:
        # the ten that must play are this test's own; the others are swiped past.
        ours = set(corpus["ids"])
        played: list[float] = []
        renditions: list[str] = []
        i = 0
        while len(played) < 10:
            assert await current_index(page) == i
            card = page.locator(f'#feed .card[data-index="{i}"]')
            if await card.get_attribute("data-video-id") in ours:
                t1, t2 = await wait_playing(page, i)
                if not played:  # posters come near the current card once it plays, not all at once
                    posters = await page.locator("#feed .card video").evaluate_all(
                        "vs => vs.map(v => Boolean(v.getAttribute('poster')))")
                    assert posters[i] and posters[i + 1] and not any(posters[i + 4:]), (i, posters)
                played.append(t2)
                renditions.append(await rendition_of(card))
                if len(played) == 1:
                    muted = await card.locator("video").evaluate("v => v.muted")
                    assert muted, "the first video autoplays muted"
                    await shots.take("feed-first-video")
                elif len(played) == 2:  # touch: a tap turns the sound on, and playback goes on
                    await page.touchscreen.tap(VIEWPORT["width"] // 2, VIEWPORT["height"] // 3)
                    await expect(card.locator(".hint")).to_be_hidden()
                    assert not await card.locator("video").evaluate("v => v.muted")
            if len(played) < 10:
                assert i < 80, f"only {len(played)} of this test's videos in {i} swipes"
                await page.keyboard.press("ArrowDown")
                i += 1
                await expect(page.locator("#feed")).to_have_attribute("data-current", str(i), timeout=10_000)
        assert len(played) == 10 and all(t > 0 for t in played)
        # Loopback: whatever the first card played (Chromium's first guess of the link is a coarse
        # 1.35 Mbit/s), the page has measured a fast link by the last cards and plays the main one.
        assert renditions[-1] == "main", renditions
        await shots.take("feed-tenth-video")

        # --- like: the count changes, and the like is durable ------------------------------------
        # Other tests' videos share the feed when the whole suite runs: act on a card of our creator.
        creator: ApiClient = corpus["creator"]
        target = await go_to_author(page, creator.user_id or "")
        card = page.locator(f'#feed .card[data-index="{target}"]')
        video_id = await card.get_attribute("data-video-id")
        before = int(await card.locator(".count").inner_text())
        async with page.expect_response(lambda r: r.url.endswith("/like")) as like_answer:
            await page.keyboard.press("l")
        like_token = int((await (await like_answer.value).json())["read_after"])
        await expect(card.locator(".like")).to_have_attribute("aria-pressed", "true")
        await expect(card.locator(".count")).to_have_text(str(before + 1))

        async def liked_on_server() -> bool:
            return (await creator.video(video_id or ""))["like_count"] == before + 1

        await poll(liked_on_server, "the like did not reach the video's count")
        await shots.take("liked")

        # --- follow -----------------------------------------------------------------------------
        author_id = creator.user_id
        follow = card.locator(".follow")
        await expect(follow).to_have_attribute("aria-pressed", "false")
        await follow.click()
        await expect(follow).to_have_text("Following")

        async def followed_on_server() -> bool:
            return (await creator.call("GET", f"/v1/users/{author_id}"))["follower_count"] == 1

        await poll(followed_on_server, "the follow did not reach the creator's follower count")

        # --- the author's profile grid ------------------------------------------------------------
        await card.locator(".author").click()
        await expect(page.locator("#grid-view")).to_be_visible()
        await expect(page.locator("#grid-header h2")).to_have_text(f"@cara{corpus['suffix']}")
        await expect(page.locator("#grid a")).to_have_count(CLIPS, timeout=15_000)
        await expect(page.locator("#grid-header .follow-profile")).to_have_text("Following")
        await shots.take("profile-grid")

        # --- a hashtag grid, from a caption --------------------------------------------------------
        await page.click("nav a[data-nav=feed]")
        tag_link = page.locator(f'#feed .card[data-index="{target}"] .caption a.tag[href="#/tag/{corpus["tag"]}"]')
        await tag_link.click()
        await expect(page.locator("#grid-header h2")).to_have_text("#" + corpus["tag"])
        # the creator's clips and the viewer's own upload carry the tag
        await expect(page.locator("#grid a")).to_have_count(CLIPS + 1, timeout=15_000)
        await shots.take("hashtag-grid")

        # --- the next feed page will ask to take the like in (read_after) ------------------------
        # (this test's own feed is at its end by now, so no page is asked any more: the page's
        # module, the same instance the app imported, says what the next one would send)
        pending = await page.evaluate("async () => (await import('/web/api.js')).readAfter()")
        assert pending is not None and int(pending) >= like_token, (pending, like_token)

        # --- sign out: the session's refresh token is dead ---------------------------------------
        refresh = await page.evaluate("() => localStorage.getItem('clipstream.refresh')")
        assert refresh
        await page.click("#sign-out")
        await expect(page.locator("#login-form")).to_be_visible()
        assert await page.evaluate("() => localStorage.getItem('clipstream.refresh')") is None
        r = httpx.post(system + "/v1/auth/refresh", json={"refresh_token": refresh}, timeout=10)
        assert r.status_code == 401, r.text
        await shots.take("signed-out")
        assert not errors, errors
        assert not refused, refused
    finally:
        await shots.take("last")
        await context.close()


async def rendition_of(card) -> str:  # noqa: ANN001
    """Which file the card's video plays: the media worker names the low rendition ``<id>-low.mp4``."""
    src = await card.locator("video").evaluate("v => v.currentSrc")
    assert src, "the card's video has no source"
    return "low" if "-low.mp4" in src.split("?")[0] else "main"


async def test_a_3g_like_link_plays_the_low_rendition(system, browser, corpus) -> None:
    """Chromium's emulation of the watch bench's 3G-like link (1.6 Mbit/s, 150 ms): the page's first
    guess (the Network Information API follows the emulation) and its measurements pick the low
    rendition, which plays."""
    from playwright.async_api import expect

    name = f"tina{corpus['suffix']}"
    r = httpx.post(system + "/v1/auth/register", timeout=10,
                   json={"username": name, "email": f"{name}@example.test", "password": PASSWORD})
    assert r.status_code in (200, 201), r.text
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    shots = Shots(page)
    try:
        cdp = await context.new_cdp_session(page)
        await cdp.send("Network.enable")
        await cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 150, "downloadThroughput": 200_000, "uploadThroughput": 200_000})
        await page.goto(system + "/")
        await page.fill("#login-form [name=username]", name)
        await page.fill("#login-form [name=password]", PASSWORD)
        await page.click("#login-form button[type=submit]")
        await expect(page.locator("#feed")).to_have_attribute("data-current", "0", timeout=30_000)
        ours = set(corpus["ids"])
        seen: list[str] = []
        i = 0
        while len(seen) < 3:
            card = page.locator(f'#feed .card[data-index="{i}"]')
            if await card.get_attribute("data-video-id") in ours:
                await wait_playing(page, i, timeout=40.0)
                seen.append(await rendition_of(card))
            assert i < 30, f"only {len(seen)} of this test's videos in {i} swipes"
            await page.keyboard.press("ArrowDown")
            i += 1
            await expect(page.locator("#feed")).to_have_attribute("data-current", str(i), timeout=20_000)
        await shots.take("3g-low-rendition")
        assert seen == ["low"] * 3, seen
    finally:
        await context.close()


async def test_errors_are_shown_in_words(system, browser, corpus) -> None:
    """A wrong password, and a session whose refresh token was revoked elsewhere: words, not a blank page."""
    from playwright.async_api import expect

    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    shots = Shots(page)
    try:
        await page.goto(system + "/")
        await page.fill("#login-form [name=username]", f"cara{corpus['suffix']}")
        await page.fill("#login-form [name=password]", "not the password")
        await page.click("#login-form button[type=submit]")
        await expect(page.locator("#auth-error")).to_have_text("Wrong username or password.")
        await page.fill("#login-form [name=password]", PASSWORD)
        await page.click("#login-form button[type=submit]")
        await expect(page.locator("#feed-view")).to_be_visible(timeout=15_000)
        refresh = await page.evaluate("() => localStorage.getItem('clipstream.refresh')")
        r = httpx.post(system + "/v1/auth/logout", json={"refresh_token": refresh}, timeout=10)
        assert r.status_code == 204
        # a new tab of the same browser has no access token yet and must refresh: refused -> words
        other = await context.new_page()
        await other.goto(system + "/")
        await expect(other.locator("#notice")).to_contain_text("session has ended", timeout=15_000)
        await expect(other.locator("#login-form")).to_be_visible()
        await context.set_offline(True)
        await expect(other.locator("#offline")).to_be_visible()
        await Shots(other).take("offline")
        await context.set_offline(False)
    finally:
        await shots.take("errors-last")
        await context.close()


async def test_the_api_docs_render_without_internet(system, browser) -> None:
    from playwright.async_api import expect

    context = await browser.new_context()
    refused = await local_only(context)
    page = await context.new_page()
    try:
        await page.goto(system + "/schema")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("clipstream API", timeout=20_000)
        await expect(page.locator(".opblock-summary-path", has_text="/v1/auth/refresh")).to_be_visible()
        await Shots(page).take("api-docs")
        assert not refused, refused
    finally:
        await context.close()
