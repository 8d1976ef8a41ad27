"""The watch page's rendition choice (http/static/abr.js), run in Debian's Chromium: the module is
imported as it is served, no service needed."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from clipstream.http.web import STATIC_DIR
from clipstream.stack.apt_tools import chromium_binary

if not chromium_binary():
    pytest.skip("chromium missing: `clipstream stack up` installs it (Debian package chromium)",
                allow_module_level=True)

MAIN, LOW = "http://store.test/v.mp4", "http://store.test/v-low.mp4"
ITEM = {"video_url": MAIN, "video_url_low": LOW, "video_kbps": 1370, "video_low_kbps": 390}


@pytest.fixture(scope="module")
async def abr() -> AsyncIterator[Any]:
    """``await abr(js)``: evaluates ``js`` (an expression over the module as ``m``) in a blank page."""
    from playwright.async_api import async_playwright

    source = (STATIC_DIR / "abr.js").read_text()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_binary(),
                                          args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        page = await browser.new_page()
        await page.evaluate("async (src) => { window.m = await import("
                            "'data:text/javascript;charset=utf-8,' + encodeURIComponent(src)); }", source)

        async def run(js: str, arg: Any = None) -> Any:
            return await page.evaluate(f"(arg) => {{ const m = window.m; return {js}; }}", arg)

        try:
            yield run
        finally:
            await browser.close()


class TestChoose:
    async def test_a_3g_like_link_plays_the_low_rendition(self, abr) -> None:
        assert await abr("m.choose(arg, 1.6e6)", ITEM) == {"rendition": "low", "url": LOW, "kbps": 390}

    async def test_a_4g_like_link_plays_the_main_one(self, abr) -> None:
        assert (await abr("m.choose(arg, 9e6)", ITEM))["url"] == MAIN

    async def test_main_needs_twice_its_bitrate(self, abr) -> None:
        assert (await abr("m.choose(arg, 2 * 1370e3)", ITEM))["rendition"] == "main"
        assert (await abr("m.choose(arg, 2 * 1370e3 - 1)", ITEM))["rendition"] == "low"

    async def test_unknown_throughput_starts_low(self, abr) -> None:
        assert (await abr("m.choose(arg, null)", ITEM))["rendition"] == "low"

    async def test_a_video_without_a_low_rendition_plays_its_only_one(self, abr) -> None:
        old = {"video_url": MAIN, "video_url_low": None, "video_kbps": None, "video_low_kbps": None}
        assert await abr("m.choose(arg, 1e5)", old) == {"rendition": "main", "url": MAIN, "kbps": 1400}

    async def test_unknown_bitrates_are_assumed_from_the_transcoder(self, abr) -> None:
        item = {**ITEM, "video_kbps": None, "video_low_kbps": None}
        assert (await abr("m.choose(arg, 2.7e6)", item))["rendition"] == "low"  # < 2 x 1400k
        assert (await abr("m.choose(arg, 2.8e6)", item))["rendition"] == "main"


class TestPreloadCount:
    async def test_preloads_only_what_the_link_has_room_for(self, abr) -> None:
        counts = await abr("[8e6, 1.6e6, 1.2e6, 0.8e6, 0.5e6].map((bps) => m.preloadCount(bps, 390, 2))")
        assert counts == [2, 2, 2, 1, 0]

    async def test_unknown_throughput_preloads_as_configured(self, abr) -> None:
        assert await abr("m.preloadCount(null, 390, 2)") == 2


class TestThroughput:
    async def test_the_first_measurement_replaces_the_guess(self, abr) -> None:
        got = await abr("(() => { const t = new m.Throughput(1.35e6); t.add(4e6, 1000); return [t.bps, t.samples]; })()")
        assert got == [4e6, 1]

    async def test_later_samples_are_averaged(self, abr) -> None:
        assert await abr("(() => { const t = new m.Throughput(); t.add(4e6, 1000); t.add(2e6, 1000); return t.bps; })()") == 3e6

    async def test_a_sample_too_small_to_tell_is_ignored(self, abr) -> None:
        got = await abr("(() => { const t = new m.Throughput(); return [t.add(1e5, 10), t.add(3e5, 0), t.bps]; })()")
        assert got == [False, False, None]

    async def test_the_guess_comes_from_the_network_information_api(self, abr) -> None:
        assert await abr("[m.guessFrom({downlink: 1.6}), m.guessFrom({downlink: 0}), m.guessFrom(undefined)]") == [
            1.6e6, None, None]


class TestLinkMeter:
    async def test_windows_while_loading_are_samples_of_the_link(self, abr) -> None:
        got = await abr("""(() => { const t = new m.Throughput(), lm = new m.LinkMeter(t);
            return [lm.tick(0, 0, true), lm.tick(1000, 1.6e6, true), t.bps]; })()""")
        assert got == [False, True, 1.6e6]

    async def test_the_tick_at_a_loads_end_closes_its_window(self, abr) -> None:
        got = await abr("""(() => { const t = new m.Throughput(), lm = new m.LinkMeter(t);
            return [lm.tick(0, 0, true), lm.tick(500, 0.8e6, false), t.bps, lm.tick(1500, 0.8e6, false)]; })()""")
        assert got == [False, True, 1.6e6, False]

    async def test_a_window_that_began_idle_says_nothing(self, abr) -> None:
        got = await abr("""(() => { const t = new m.Throughput(), lm = new m.LinkMeter(t);
            return [lm.tick(0, 0, false), lm.tick(1000, 1e6, true), t.bps]; })()""")
        assert got == [False, False, None]

    async def test_a_detached_card_restarts_the_window(self, abr) -> None:
        got = await abr("""(() => { const t = new m.Throughput(), lm = new m.LinkMeter(t);
            lm.tick(0, 1e6, true);
            return [lm.tick(1000, 0.5e6, true), lm.tick(2000, 1.5e6, true), t.bps]; })()""")
        assert got == [False, True, 1e6]

    async def test_too_few_bits_keep_the_window_open(self, abr) -> None:
        got = await abr("""(() => { const t = new m.Throughput(), lm = new m.LinkMeter(t);
            return [lm.tick(0, 0, true), lm.tick(100, 1e5, true), lm.tick(200, 2e5, true), t.bps]; })()""")
        assert got == [False, False, True, 1e6]
