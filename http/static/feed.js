// A vertical, snap-scrolled list of videos: the current one plays (muted until the viewer taps)
// and loops, the next ones are preloaded, a view with its watch time is reported when a card is
// left, and more pages are fetched through next_cursor as the viewer nears the end.
"use strict";

import { api } from "./api.js";
import { ASSUMED_KBPS, LinkMeter, Throughput, bufferedEnd, choose, guessFrom, preloadCount } from "./abr.js";

const TAG = /#([\p{L}\p{N}_]+)/gu;
const STALL_MS = 50;

/** Playback figures of every card left, for the bench's `watch` scenario and for a curious
 * developer's console: time from becoming current to the first frame shown, stalls after it. */
export const watchLog = (window.clipstreamWatch = window.clipstreamWatch || { cards: [], pages: [] });

/** Who the viewer follows, as far as the page knows (author id -> bool), shared by every list. */
export const following = new Map();
let soundOn = false;       // one tap turns sound on for every video after it

/** The link's throughput as this page has seen it, shared by every list (it is the same link).
 * Measured from the media it loads: the bytes its cards received (each one's rendition bitrate times
 * the seconds buffered) over the time they took, once a second while any is loading. Not from
 * Resource Timing: the media come from the object store's origin, which sends no
 * Timing-Allow-Origin, so their entries have no sizes. */
export const throughput = new Throughput(guessFrom(navigator.connection));
navigator.connection?.addEventListener?.("change", () => {
  if (!throughput.samples) throughput.bps = guessFrom(navigator.connection);  // a guess until measured
});
watchLog.throughput = throughput;

/** An element with attributes ("text" sets its text) and children. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

/** Caption text with the server's hashtags as links to their grid (data inserted as text only). */
export function captionNodes(caption, hashtags) {
  const tags = new Set(hashtags || []);
  const out = [];
  let last = 0;
  for (const m of caption.matchAll(TAG)) {
    const tag = m[1].toLowerCase();
    if (!tags.has(tag)) continue;
    out.push(document.createTextNode(caption.slice(last, m.index)));
    out.push(el("a", { href: "#/tag/" + encodeURIComponent(tag), class: "tag", text: m[0] }));
    last = m.index + m[0].length;
  }
  out.push(document.createTextNode(caption.slice(last)));
  return out;
}

export class Player {
  /**
   * @param {HTMLElement} root the scroll container
   * @param {(cursor: string|null) => Promise<{videos: object[], next_cursor: string|null}>} load
   * @param {{preload?: number, ahead?: string, notify: (msg: string) => void, me: () => object|null}} opts
   *   preload: how many cards after the current one get their video early; ahead: how much of it
   *   ("metadata": the header and first frame, "auto": as much as the browser likes); abr (default
   *   true): pick each card's rendition and the number preloaded from the measured throughput,
   *   false: always the main rendition and ``preload`` cards (the page before renditions);
   *   allPosters: every card's poster at once, as before (default: only near the current card)
   */
  constructor(root, load, opts) {
    this.root = root;
    this.load = load;
    this.preload = opts.preload ?? 2;
    this.ahead = opts.ahead ?? "metadata";
    this.abr = opts.abr ?? true;
    this.allPosters = opts.allPosters ?? false;
    this.meter = new LinkMeter(throughput);
    this.ticker = 0;
    this.notify = opts.notify;
    this.me = opts.me;
    this.cards = [];
    this.current = -1;
    this.cursor = null;
    this.done = false;
    this.loading = null;
    this.active = false;
    this.left = true;
    this.observer = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (e.isIntersecting && e.intersectionRatio >= 0.6) this.select(Number(e.target.dataset.index));
      }
    }, { root, threshold: [0.6] });
    addEventListener("pagehide", () => this.leave());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") this.leave(); else if (this.active) this.play();
    });
  }

  /** Start (or resume) showing the list; ``startAt`` scrolls to that card first. */
  async show(startAt = 0) {
    this.active = true;
    if (!this.ticker) this.ticker = setInterval(() => this.sample(), 1000);
    if (!this.cards.length && !this.done) await this.more();
    // A list that was hidden (display: none) may come back scrolled to the top: put it back.
    const at = startAt > 0 ? startAt : this.current;
    if (at > 0 && this.cards[at]) this.cards[at].el.scrollIntoView({ block: "start" });
    if (this.current >= 0) this.play();
    this.root.focus({ preventScroll: true });
  }

  hide() {
    this.active = false;
    clearInterval(this.ticker);
    this.ticker = 0;
    this.meter.last = null;
    this.leave();
  }

  /** One tick of the link meter: the bits all attached cards hold, and whether one is loading
   * (``starting``: a source was just set or raised to "auto", so one is about to). */
  sample(starting = false) {
    let bits = 0;
    let busy = starting;
    for (const c of this.cards) {
      if (!c.attached || !c.pick || !Number.isFinite(c.video.duration)) continue;
      const end = bufferedEnd(c.video.buffered);
      bits += end * c.pick.kbps * 1000;
      busy ||= c.video.networkState === HTMLMediaElement.NETWORK_LOADING && end < c.video.duration - 0.05;
    }
    this.meter.tick(performance.now(), bits, busy);
  }

  async more() {
    if (this.done) return;
    if (!this.loading) {
      this.loading = (async () => {
        try {
          const asked = performance.now();
          const page = await this.load(this.cursor);
          this.cursor = page.next_cursor;
          if (!page.videos.length || !page.next_cursor) this.done = true;
          for (const item of page.videos) this.add(item);
          watchLog.pages.push({ ms: performance.now() - asked, videos: page.videos.length, withLogin: !!page.with_login });
          if (this.done) this.root.append(el("div", { class: "end", text: this.cards.length
            ? "You're all caught up. Pull up again later for new videos."
            : "No videos here yet." }));
        } catch (err) {
          this.notify(err.message);
        } finally {
          this.loading = null;
        }
      })();
    }
    return this.loading;
  }

  add(item) {
    const index = this.cards.length;
    const video = el("video", { playsinline: "", loop: "", preload: "none", "aria-label": "video by " + item.username });
    // A poster is an image of ~40 KB: the first page's ten at once delayed the first card's video
    // on the 3G-like link, so a card gets its poster when it comes near (see preloadAfter)
    if (this.allPosters) video.poster = item.thumbnail_url;
    video.muted = !soundOn;
    const like = el("button", { class: "like", "aria-pressed": String(!!item.liked), "aria-label": "like" }, "\u2665");
    const count = el("span", { class: "count", text: String(item.like_count) });
    const author = el("button", { class: "author", text: "@" + item.username });
    const follow = el("button", { class: "follow" });
    const hint = el("div", { class: "hint", text: "Tap for sound" });
    const paused = el("div", { class: "paused", text: "\u25B6" });
    paused.hidden = true;
    hint.hidden = soundOn;
    const meta = el("div", { class: "meta" }, author, follow,
                    el("p", { class: "caption" }, ...captionNodes(item.caption || "", item.hashtags)));
    const card = el("section", { class: "card", "data-index": String(index), "data-video-id": item.video_id,
                                       "data-author-id": item.author_id },
                    video, hint, paused, meta, el("div", { class: "actions" }, like, count));
    const c = { item, el: card, video, like, count, follow, hint, paused, liked: !!item.liked,
                likes: item.like_count, watched: 0, since: 0, attached: false, firstFrame: null };
    if (!following.has(item.author_id)) following.set(item.author_id, !!item.following_author);
    const mine = this.me()?.user_id === item.author_id;
    follow.hidden = mine;
    this.renderFollow(c);

    video.addEventListener("playing", () => {
      c.since = performance.now();
      paused.hidden = true;
      if (c.stalledAt) { this.stalled(c, c.since - c.stalledAt); c.stalledAt = 0; }
    });
    video.addEventListener("pause", () => this.account(c));
    video.addEventListener("waiting", () => {
      this.account(c);
      if (c.shownAt && c.firstFrame !== null && !c.stalledAt) c.stalledAt = performance.now();
    });
    video.addEventListener("error", () => { if (c.attached) this.notify("This video could not be played."); });
    // a load's progress and its end: the meter's windows close on time, even on a link that loads
    // a whole clip between two of its one-second ticks
    video.addEventListener("progress", () => { if (c.attached) this.sample(); });
    video.addEventListener("suspend", () => { if (c.attached) this.sample(); });
    video.addEventListener("click", () => this.tap(c));
    like.addEventListener("click", () => this.toggleLike(c));
    follow.addEventListener("click", () => this.toggleFollow(c));
    author.addEventListener("click", () => { location.hash = "#/u/" + item.author_id; });

    this.cards.push(c);
    this.root.append(card);
    const cur = this.cards[this.current];
    if (cur && index <= this.current + this.preload && !cur.video.paused) this.preloadAfter(this.current);
    this.observer.observe(card);
  }

  attach(c, preload) {
    c.video.preload = preload;
    if (!c.video.poster) c.video.poster = c.item.thumbnail_url;
    if (c.attached) return;
    c.attached = true;
    // Chosen once per attach: a card never switches inside its clip (its bytes so far would be lost)
    c.pick = this.abr ? choose(c.item, throughput.bps)
      : { rendition: "main", url: c.item.video_url, kbps: c.item.video_kbps || ASSUMED_KBPS.main };
    c.pick.estimate = throughput.bps;
    c.video.src = c.pick.url;
    this.sample(true);
  }

  detach(c) {
    if (!c.attached) return;
    c.attached = false;
    c.video.removeAttribute("src");
    c.video.load();   // frees the decoder and the buffered data
  }

  /** Card ``i`` became the current one. */
  select(i) {
    if (i === this.current || !this.active) return;
    this.leave();
    this.current = i;
    this.mark(this.cards[i]);
    this.cards.forEach((c, j) => {
      if (j === i) this.attach(c, "auto");
      else if (j < i - 1 || j > i + this.preload + 1) this.detach(c);
    });
    this.sample(true);  // a preloaded card raised to "auto" loads on
    // The current video first: the next ones start loading once it plays, so on a slow link they
    // do not share its bandwidth while it starts. (Waiting for canplaythrough instead never
    // preloaded anything on the 3G-like link: measured in bench/watch.py, BENCHMARKS.md.)
    this.cards[i].video.addEventListener("playing", () => this.preloadAfter(i), { once: true });
    this.play();
    this.root.dataset.current = String(i);
    if (i >= this.cards.length - 3) this.more();
    this.root.dispatchEvent(new CustomEvent("current", { detail: { index: i, video_id: this.cards[i].item.video_id } }));
  }

  /** Load the cards after ``i`` (if ``i`` is still the current one). */
  preloadAfter(i) {
    if (i !== this.current) return;
    // Only as many as the link has room for beside the current card: on a link that barely carries
    // its rendition, a preload takes the bytes the current card is about to play.
    const cur = this.cards[i];
    // The near cards' posters too (they may be swiped to), once the current card plays: set when it
    // became current, they took bytes from its start (4G-like link, BENCHMARKS.md).
    for (let j = i + 1; j <= i + this.preload + 1 && j < this.cards.length; j++) {
      const c = this.cards[j];
      if (!c.video.poster) c.video.poster = c.item.thumbnail_url;
    }
    const n = this.abr && cur.pick ? preloadCount(throughput.bps, cur.pick.kbps, this.preload) : this.preload;
    for (let j = i + 1; j <= i + n && j < this.cards.length; j++) this.attach(this.cards[j], this.ahead);
  }


  /** Start the clock of a card becoming current: its first frame shown after now is its start. */
  mark(c) {
    Object.assign(c, { shownAt: performance.now(), firstFrame: null, stalls: 0, stallMs: 0, stalledAt: 0,
                       preloaded: c.attached && c.video.readyState });
    const seen = () => { if (c.firstFrame === null && c.shownAt) c.firstFrame = performance.now() - c.shownAt; };
    if (c.video.requestVideoFrameCallback) c.video.requestVideoFrameCallback(seen);
    else c.video.addEventListener("playing", seen, { once: true });
  }

  /** A wait for data after the first frame; one too short to see (a few ms) is not a stall. */
  stalled(c, ms) {
    if (ms >= STALL_MS) { c.stalls += 1; c.stallMs += ms; }
  }

  play() {
    const c = this.cards[this.current];
    if (!c) return;
    this.left = false;
    c.video.muted = !soundOn;
    c.video.play().catch(() => { c.paused.hidden = false; });
  }

  account(c) {
    if (c.since) { c.watched += performance.now() - c.since; c.since = 0; }
  }

  /** The current card is left: pause it and report the view with its watch time. */
  leave() {
    const c = this.cards[this.current];
    if (!c || this.left) return;
    this.left = true;
    c.video.pause();
    this.account(c);
    if (c.shownAt) {
      if (c.stalledAt) this.stalled(c, performance.now() - c.stalledAt);
      watchLog.cards.push({ video_id: c.item.video_id, index: this.current, first_frame_ms: c.firstFrame,
                            stalls: c.stalls, stall_ms: Math.round(c.stallMs), preloaded_state: c.preloaded,
                            error: c.video.error ? c.video.error.code : 0, rendition: c.pick ? c.pick.rendition : null,
                            estimate_kbps: c.pick && c.pick.estimate ? Math.round(c.pick.estimate / 1000) : null });
      c.shownAt = 0;
    }
    const watched = Math.round(c.watched);
    c.watched = 0;
    api("POST", `/v1/videos/${c.item.video_id}/view`, { watched_ms: Math.min(watched, 3_600_000) }, { keepalive: true })
      .catch(() => { /* a lost view only teaches the feed a little less */ });
  }

  tap(c) {
    if (!soundOn) {
      soundOn = true;
      for (const x of this.cards) { x.hint.hidden = true; x.video.muted = false; }
      if (c.video.paused) this.play();
      return;
    }
    this.togglePause();
  }

  togglePause() {
    const c = this.cards[this.current];
    if (!c) return;
    if (c.video.paused) this.play(); else { c.video.pause(); c.paused.hidden = false; }
  }

  step(delta) {
    const next = this.cards[Math.max(0, this.current + delta)];
    if (next) next.el.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  likeCurrent() {
    const c = this.cards[this.current];
    if (c) this.toggleLike(c);
  }

  async toggleLike(c) {
    const liked = !c.liked;
    const show = (on, n) => { c.liked = on; c.likes = n; c.like.setAttribute("aria-pressed", String(on));
                              c.count.textContent = String(n); };
    const before = c.likes;
    show(liked, Math.max(0, before + (liked ? 1 : -1)));
    try {
      await api("POST", `/v1/videos/${c.item.video_id}/like`, { action: liked ? "like" : "unlike" });
    } catch (err) {
      show(!liked, before);
      this.notify(err.message);
    }
  }

  renderFollow(c) {
    const on = following.get(c.item.author_id);
    c.follow.textContent = on ? "Following" : "Follow";
    c.follow.setAttribute("aria-pressed", String(!!on));
  }

  async toggleFollow(c) {
    const author = c.item.author_id;
    const on = !following.get(author);
    following.set(author, on);
    this.cards.filter((x) => x.item.author_id === author).forEach((x) => this.renderFollow(x));
    try {
      await api("POST", `/v1/users/${author}/follow`, { action: on ? "follow" : "unfollow" });
    } catch (err) {
      following.set(author, !on);
      this.cards.filter((x) => x.item.author_id === author).forEach((x) => this.renderFollow(x));
      this.notify(err.message);
    }
  }
}
