"""The ``/admin/actors`` page: static HTML with one inline script, allowed by its hash.

Why static: the page holds no data, so it can be served without a token; the script fetches
``/v1/admin/actors`` with ``Authorization: Bearer <token>``, the same admin check as every API
client. The token comes from a login form, a pasted token, or the URL fragment (``#token=…``:
fragments never reach the server, so never its logs); it is kept in ``sessionStorage`` (gone when
the tab closes) and the fragment is wiped from the address bar at once. Everything rendered goes
through ``textContent``, and the Content-Security-Policy allows no other script than this one.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["PAGE_HEADERS", "PAGE_HTML", "REFRESH_SECONDS"]

REFRESH_SECONDS = 2

_SCRIPT = """
"use strict";
const KEY = "clipstream.admin.token";
const $ = (id) => document.getElementById(id);
const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
if (m) {
  sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + location.search);
}
function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
function row(cells, attrs) {
  const tr = el("tr", null, attrs);
  for (const c of cells) tr.appendChild(el("td", c));
  return tr;
}
function table(head, rows) {
  const t = el("table"); const h = el("tr");
  for (const c of head) h.appendChild(el("th", c));
  t.appendChild(h); for (const r of rows) t.appendChild(r); return t;
}
function age(s) { return s < 0 ? "never" : s.toFixed(1) + " s"; }
function ranges(ps) {
  const out = []; let i = 0;
  while (i < ps.length) { let j = i; while (j + 1 < ps.length && ps[j + 1] === ps[j] + 1) j++;
    out.push(i === j ? String(ps[i]) : ps[i] + "-" + ps[j]); i = j + 1; }
  const text = out.join(",");  // a round-robin split does not compress: keep the cell narrow
  return ps.length + " [" + (text.length > 40 ? text.slice(0, 37) + "..." : text) + "]";
}
function render(data) {
  const root = $("tree"); root.replaceChildren();
  root.appendChild(el("h2", "kinds"));
  root.appendChild(table(["kind", "shards", "partitions owned", "entities", "dirty", "backlog", "processed", "restarts"],
    data.kinds.map((k) => row([k.kind, k.shards, k.partitions_owned, k.entities, k.dirty, k.backlog, k.processed, k.restarts],
      {"class": "kind", "data-kind": k.kind}))));
  if (!data.nodes.length) root.appendChild(el("p", "no node answered", {"class": "warn"}));
  for (const n of data.nodes) {
    const sec = el("section", null, {"class": "node", "data-node": n.node});
    sec.appendChild(el("h2", "node " + n.node));
    const g = n.guardian;
    sec.appendChild(el("p", "guardian pid " + g.pid + " · " + g.address + " · poison " + g.poison, {"class": "guardian"}));
    sec.appendChild(table(["shard", "state", "pid", "partitions", "entities", "dirty", "backlog", "processed",
        "last flush", "flush latency", "restarts", "hottest entities (msgs per 5 s)", "error"],
      g.shards.map((s) => row([s.kind + "/" + s.index, s.state, s.pid, ranges(s.partitions), s.entities, s.dirty,
        s.backlog, s.processed, age(s.last_flush_age), (s.last_flush_latency * 1000).toFixed(1) + " ms", s.restarts,
        s.hot.map((h) => h[0] + ":" + h[1]).join(" "), s.error],
        {"class": "shard state-" + s.state, "data-shard": s.kind + "/" + s.index}))));
    // The feed shards' online evaluation: impressions, likes and like-through rate per source.
    const sources = [];
    for (const s of g.shards) {
      const c = s.counters || {};
      for (const k of Object.keys(c)) {
        if (!k.startsWith("impressions.")) continue;
        const src = k.slice("impressions.".length), shown = c[k], liked = c["likes." + src] || 0;
        sources.push(row([s.kind + "/" + s.index, src, shown, liked, shown ? (100 * liked / shown).toFixed(1) + " %" : "-"],
          {"class": "source", "data-source": s.kind + "/" + s.index + "/" + src}));
      }
      if (c.new_video_impressions !== undefined)
        sources.push(row([s.kind + "/" + s.index, "new videos", c.new_video_impressions, "", (c.new_videos_exposed || 0) + " videos"],
          {"class": "source new"}));
    }
    if (sources.length) {
      sec.appendChild(el("h3", "candidate sources"));
      sec.appendChild(table(["shard", "source", "impressions", "likes", "like-through"], sources));
    }
    root.appendChild(sec);
  }
  $("status").textContent = "updated " + new Date().toLocaleTimeString() + " (" + data.gathered_ms + " ms)";
}
async function refresh() {
  const token = sessionStorage.getItem(KEY);
  $("login").hidden = !!token;
  if (!token) { $("status").textContent = "log in with an admin account"; return; }
  try {
    const r = await fetch("/v1/admin/actors", {headers: {"Authorization": "Bearer " + token}, cache: "no-store"});
    if (r.status === 401) { sessionStorage.removeItem(KEY); $("status").textContent = "token invalid or expired"; $("login").hidden = false; return; }
    if (r.status === 403) { $("status").textContent = "this account is not an admin"; return; }
    if (!r.ok) { $("status").textContent = "error " + r.status; return; }
    render(await r.json());
  } catch (e) { $("status").textContent = "unreachable: " + e; }
}
$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const tok = $("token").value.trim();
  if (tok) { sessionStorage.setItem(KEY, tok); }
  else {
    const r = await fetch("/v1/auth/login", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({username: $("username").value, password: $("password").value})});
    if (!r.ok) { $("status").textContent = "login failed (" + r.status + ")"; return; }
    sessionStorage.setItem(KEY, (await r.json()).access_token);
  }
  $("password").value = ""; $("token").value = ""; refresh();
});
$("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); $("tree").replaceChildren(); refresh(); });
refresh();
setInterval(refresh, REFRESH_MS);
""".replace("REFRESH_MS", str(REFRESH_SECONDS * 1000))

_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child { text-align: left; font-family: monospace; }
tr.state-failed, tr.state-restarting, .warn { color: #b00; }
#status { color: #555; }
"""

PAGE_HTML = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>clipstream · actors</title>
<meta name="referrer" content="no-referrer"><style>{_STYLE}</style></head>
<body><h1>clipstream actors</h1>
<form id="login" hidden>
<input id="username" placeholder="admin username" autocomplete="username">
<input id="password" type="password" placeholder="password" autocomplete="current-password">
or <input id="token" placeholder="bearer token" autocomplete="off" size="40">
<button type="submit">show</button></form>
<p><span id="status">loading</span> <button id="logout" type="button">forget token</button></p>
<div id="tree"></div>
<script>{_SCRIPT}</script></body></html>
"""


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


PAGE_HEADERS = {
    # Only this exact inline script and style may run; fetches only to this origin.
    "Content-Security-Policy": (
        f"default-src 'none'; script-src 'sha256-{_sha256(_SCRIPT)}'; style-src 'sha256-{_sha256(_STYLE)}'; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
