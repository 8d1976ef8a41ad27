// The watch page: sign in, the For You feed, profile and hashtag grids, upload. Routes live in the
// URL fragment (#/, #/u/<id>, #/tag/<tag>, #/upload); everything shown is inserted as text.
"use strict";

import { ApiError, FIRST_PAGE, api, login, logout, me, onSignedOut, putFile, register, signedIn,
         readAfter, takeFirstPage } from "./api.js";
import { Player, el, following } from "./feed.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["auth", "feed-view", "grid-view", "watch-view", "upload-view"];
// ?preload=N&ahead=auto|metadata: how the next cards are preloaded; ?abr=0: always the main rendition
// and N preloads, as before renditions; ?posters=all: every card's poster at once, as before (the
// bench's `watch` scenario compares)
const QUERY = new URLSearchParams(location.search);
const PRELOAD = { preload: Number(QUERY.get("preload") ?? 2), ahead: QUERY.get("ahead") === "auto" ? "auto" : "metadata",
                  abr: QUERY.get("abr") !== "0", allPosters: QUERY.get("posters") === "all" };

let noticeTimer = 0;
function notify(message) {
  const n = $("notice");
  n.textContent = message;
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, 6000);
}
window.addEventListener("offline", () => { $("offline").hidden = false; });
window.addEventListener("online", () => { $("offline").hidden = true; });
$("offline").hidden = navigator.onLine !== false;


let feed = null;     // the For You player, kept while signed in so coming back resumes it
let watch = null;    // a player over a grid's videos
let active = null;   // the player the keyboard drives

function showView(id) {
  for (const v of VIEWS) $(v).hidden = v !== id;
  $("nav").hidden = id === "auth";
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active",
    (a.dataset.nav === "feed" && id === "feed-view") || (a.dataset.nav === "upload" && id === "upload-view")));
  if (feed && id !== "feed-view") feed.hide();
  if (watch && id !== "watch-view") { watch.hide(); watch = null; }
  active = null;
}

// --- sign in -------------------------------------------------------------------------------
function authView() {
  showView("auth");
  $("register-form").hidden = true;
  $("login-form").hidden = false;
  $("auth-error").textContent = "";
}
$("to-register").addEventListener("click", (e) => {
  e.preventDefault(); $("login-form").hidden = true; $("register-form").hidden = false;
});
$("to-login").addEventListener("click", (e) => {
  e.preventDefault(); $("register-form").hidden = true; $("login-form").hidden = false;
});
async function submitting(form, fn) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  $("auth-error").textContent = "";
  try { await fn(new FormData(form)); form.reset(); route(); }
  catch (err) { $("auth-error").textContent = err.message; }
  finally { button.disabled = false; }
}
$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  submitting(e.target, (f) => login(f.get("username"), f.get("password")));
});
$("register-form").addEventListener("submit", (e) => {
  e.preventDefault();
  submitting(e.target, (f) => register(f.get("username"), f.get("email"), f.get("password")));
});
$("sign-out").addEventListener("click", async () => {
  try { await logout(); } catch (err) { if (err.status !== 401) notify("Signed out on this device; " + err.message); }
  signedOut();
});
function signedOut() {
  for (const p of [feed, watch]) if (p) { p.hide(); p.root.replaceChildren(); }
  feed = watch = null;
  following.clear();
  location.hash = "#/";
  authView();
}
onSignedOut(() => { notify("Your session has ended: please sign in again."); signedOut(); });

// --- the feed --------------------------------------------------------------------------------
function feedView() {
  showView("feed-view");
  if (!feed) {
    const page = (cursor) => (!cursor && takeFirstPage())
      || api("GET", `/v1/feed?limit=${FIRST_PAGE}` + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "")
             + (readAfter() ? "&after=" + readAfter() : ""));  // the page takes in the last like, follow, view
    feed = new Player($("feed"), page, { ...PRELOAD, notify, me });
  }
  active = feed;
  feed.show();
}

// --- grids: a profile or a hashtag ---------------------------------------------------------------
let gridToken = 0;
async function gridView(kind, key) {
  showView("grid-view");
  const token = ++gridToken;
  const header = $("grid-header"), grid = $("grid"), end = $("grid-end");
  header.replaceChildren(); grid.replaceChildren(); end.textContent = "Loading\u2026";
  const base = kind === "user" ? `/v1/users/${key}/videos` : `/v1/hashtags/${encodeURIComponent(key)}/videos`;
  const items = [];
  let cursor = null;
  const page = async (c) => {
    const body = await api("GET", base + "?limit=30" + (c ? "&cursor=" + encodeURIComponent(c) : ""));
    return body;
  };
  try {
    if (kind === "user") {
      const p = await api("GET", `/v1/users/${key}`);
      if (token !== gridToken) return;
      header.append(el("h2", { text: "@" + p.username }),
        el("p", { class: "stats", text: `${p.video_count} videos \u00b7 ${p.follower_count} follower${p.follower_count === 1 ? "" : "s"} \u00b7 ${p.following_count} following` }));
      if (me()?.user_id !== p.user_id) {
        if (!following.has(p.user_id)) following.set(p.user_id, !!p.following);
        const b = el("button", { class: "follow-profile" });
        const render = () => { b.textContent = following.get(p.user_id) ? "Following" : "Follow";
                               b.setAttribute("aria-pressed", String(!!following.get(p.user_id))); };
        render();
        b.addEventListener("click", async () => {
          const on = !following.get(p.user_id);
          following.set(p.user_id, on); render();
          try { await api("POST", `/v1/users/${p.user_id}/follow`, { action: on ? "follow" : "unfollow" }); }
          catch (err) { following.set(p.user_id, !on); render(); notify(err.message); }
        });
        header.append(b);
      }
    } else {
      header.append(el("h2", { text: "#" + key }));
    }
    const more = async () => {
      const body = await page(cursor);
      if (token !== gridToken) return;
      cursor = body.next_cursor;
      for (const item of body.videos) {
        const i = items.length;
        items.push(item);
        const a = el("a", { href: "#", "data-video-id": item.video_id, "aria-label": item.caption || "video" },
                     el("span", { text: "\u2665 " + item.like_count }));
        a.style.backgroundImage = `url(${JSON.stringify(item.thumbnail_url)})`;
        a.addEventListener("click", (e) => { e.preventDefault(); watchView(items, cursor, page, i); });
        grid.append(a);
      }
      end.textContent = cursor ? "" : (items.length ? "" : "No videos yet.");
      if (cursor) io.observe(end); else io.disconnect();
    };
    const io = new IntersectionObserver((es) => { if (es.some((e) => e.isIntersecting)) { io.disconnect(); more().catch((err) => notify(err.message)); } });
    await more();
  } catch (err) {
    if (token !== gridToken) return;
    end.textContent = err instanceof ApiError && err.status === 404 ? "Not found." : err.message;
  }
}

function watchView(items, cursor, page, start) {
  showView("watch-view");
  $("watch").replaceChildren();
  let first = true;
  watch = new Player($("watch"), async (c) => {
    if (first) { first = false; return { videos: items.slice(), next_cursor: cursor || "" }; }
    return c ? page(c) : { videos: [], next_cursor: null };
  }, { ...PRELOAD, notify, me });
  active = watch;
  watch.show(start);
}
$("watch-close").addEventListener("click", () => route());

// --- upload ----------------------------------------------------------------------------------
const FORMATS = { "video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm" };
function uploadView() { showView("upload-view"); }
$("upload-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target, status = $("upload-status"), bar = $("upload-progress");
  const file = form.elements.file.files[0];
  if (!file) return;
  const fmt = FORMATS[file.type] || (file.name.split(".").pop() || "").toLowerCase();
  const button = form.querySelector("button");
  button.disabled = true;
  bar.hidden = false; bar.value = 0;
  status.textContent = "Preparing the upload\u2026";
  try {
    const slot = await api("POST", "/v1/videos/upload-url",
      { file_size_bytes: file.size, file_format: fmt, caption: form.elements.caption.value });
    status.textContent = "Uploading\u2026";
    await putFile(slot.upload_url, file, (f) => { bar.value = f; status.textContent = `Uploading\u2026 ${Math.round(f * 100)} %`; });
    bar.value = 1;
    await api("POST", `/v1/videos/${slot.video_id}/complete`);
    status.textContent = "Processing\u2026";
    const deadline = Date.now() + 10 * 60 * 1000;
    for (;;) {
      const v = await api("GET", `/v1/videos/${slot.video_id}`);
      if (v.status === "ready") {
        status.replaceChildren("Ready: ", el("a", { href: "#/u/" + v.author_id, text: "see it on your profile" }));
        status.dataset.state = "ready";
        form.reset();
        break;
      }
      if (v.status === "failed") {
        status.textContent = "Processing failed: " + (v.failure_reason || "unknown reason");
        status.dataset.state = "failed";
        break;
      }
      if (Date.now() > deadline) { status.textContent = "Still processing: check your profile later."; break; }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } catch (err) {
    status.textContent = "Upload failed: " + err.message;
    status.dataset.state = "failed";
  } finally {
    button.disabled = false;
    bar.hidden = true;
  }
});

// --- keyboard: up/down, space, L -------------------------------------------------------------
document.addEventListener("keydown", (e) => {
  if (!active || e.target.closest("input, textarea")) return;
  if (e.key === "ArrowDown") { e.preventDefault(); active.step(1); }
  else if (e.key === "ArrowUp") { e.preventDefault(); active.step(-1); }
  else if (e.key === " ") { e.preventDefault(); active.togglePause(); }
  else if (e.key === "l" || e.key === "L") { e.preventDefault(); active.likeCurrent(); }
  else if (e.key === "Escape" && active === watch) route();
});

// --- routes ----------------------------------------------------------------------------------
function route() {
  if (!signedIn()) return authView();
  const h = location.hash.replace(/^#/, "") || "/";
  let m;
  if (h === "/" ) return feedView();
  if (h === "/upload") return uploadView();
  if (h === "/me") return gridView("user", me()?.user_id);
  if ((m = h.match(/^\/u\/(\d{1,19})$/))) return gridView("user", m[1]);
  if ((m = h.match(/^\/tag\/([^/]+)$/))) return gridView("tag", decodeURIComponent(m[1]));
  location.hash = "#/";
}
addEventListener("hashchange", route);
route();
