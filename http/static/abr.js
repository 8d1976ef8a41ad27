// Which rendition of a video to load, from the throughput the page has measured: a short-video
// client's adaptive choice, with a whole file per rendition (no HLS/DASH, no switch inside a clip).
// Pure functions and two small classes, no DOM: tests/http/test_abr_js.py runs them in Chromium.
"use strict";

/** Bitrates assumed when the API does not say (videos processed before it recorded them), kbit/s:
 * about what the transcoder makes (1200k video cap + 128k audio; 300k + 64k). */
export const ASSUMED_KBPS = { main: 1400, low: 400 };
/** The main rendition only when the link carries twice its bitrate: it then loads at twice real
 * time while the next cards preload beside it (the 3G-like link, 1.6 Mbit/s against a 1.37 Mbit/s
 * clip, stalled on every card: BENCHMARKS.md). */
export const HEADROOM = 2;
/** A sample of fewer bits says more about the round trip than the bandwidth (a 150 ms RTT alone
 * would make 25 KB read as 1.3 Mbit/s at best). */
export const MIN_SAMPLE_BITS = 200_000;
/** Weight of a new sample: a few cards follow a link that changes, one odd card does not swing it. */
export const ALPHA = 0.5;

/** An estimate of the link's throughput in bit/s: null until known. */
export class Throughput {
  /** @param {number|null} guess a first guess in bit/s (navigator.connection.downlink), or null */
  constructor(guess = null) {
    this.bps = guess && guess > 0 ? guess : null;
    this.samples = 0;
  }

  /** ``bits`` arrived in ``ms``; too small a sample is ignored. Returns whether it was used. */
  add(bits, ms) {
    if (!(bits >= MIN_SAMPLE_BITS) || !(ms > 0)) return false;
    const bps = (bits * 1000) / ms;
    // The first measurement replaces the guess whole: the browser's guess is coarse (and capped at
    // 10 Mbit/s in Chromium), a measurement is what this page actually got.
    this.bps = this.samples === 0 || this.bps === null ? bps : ALPHA * bps + (1 - ALPHA) * this.bps;
    this.samples += 1;
    return true;
  }
}

/**
 * Samples the link from what every loading card received: a card on its own gets only a share of
 * the link while the next ones preload beside it (measured alone, the 3G-like link's 1.6 Mbit/s read
 * as 0.7-1.1, and the page preloaded less than it could: BENCHMARKS.md). Windows in which nothing
 * was loading say nothing about the link and are skipped.
 */
export class LinkMeter {
  constructor(throughput) {
    this.throughput = throughput;
    this.last = null;
  }

  /** At ``now`` (ms) the attached cards hold ``bits`` in all; ``busy``: one of them is loading (or
   * is about to: the page ticks as it sets a source). A window counts from a busy tick to the next
   * tick, so the one at a load's end (its ``suspend``) closes it on time. Returns whether the
   * window made a sample. */
  tick(now, bits, busy) {
    const last = this.last;
    // a card detached in between took its bits with it: that window cannot be told
    if (last && bits >= last.bits) {
      if (this.throughput.add(bits - last.bits, now - last.now)) {
        this.last = busy ? { now, bits } : null;
        return true;
      }
      // too few bits to tell yet (a fast link loads a clip between two ticks): the window goes on
      if (busy) return false;
    }
    this.last = busy ? { now, bits } : null;
    return false;
  }
}

/** The first guess from the Network Information API (Chromium; Mbit/s, rounded), or null. */
export function guessFrom(connection) {
  const mbps = connection && connection.downlink;
  return typeof mbps === "number" && mbps > 0 ? mbps * 1e6 : null;
}

/**
 * The rendition of a feed item to load at throughput ``bps`` (null: unknown).
 * @returns {{rendition: "main"|"low", url: string, kbps: number}}
 */
export function choose(item, bps) {
  const main = { rendition: "main", url: item.video_url, kbps: item.video_kbps || ASSUMED_KBPS.main };
  if (!item.video_url_low) return main;
  const low = { rendition: "low", url: item.video_url_low, kbps: item.video_low_kbps || ASSUMED_KBPS.low };
  // Unknown starts low: the wrong main on a slow link stalls from its first card, the wrong low on
  // a fast one only looks softer until the first measurement moves the next cards up.
  if (bps === null || bps === undefined) return low;
  return bps >= HEADROOM * main.kbps * 1000 ? main : low;
}

/**
 * How many of the next cards to preload beside a current one of ``kbps`` (at most ``most``): each
 * preload shares the link with the current card, which must still load faster than it plays.
 */
export function preloadCount(bps, kbps, most) {
  if (bps === null || bps === undefined) return most;
  return Math.max(0, Math.min(most, Math.floor(bps / (kbps * 1000)) - 1));
}

/** End of the buffered media in seconds (0 if nothing): the file loads from its head. */
export function bufferedEnd(buffered) {
  return buffered && buffered.length ? buffered.end(buffered.length - 1) : 0;
}
