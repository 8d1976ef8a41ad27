// The public API as the page uses it: a short-lived access token in memory, the session's refresh
// token in localStorage (rotated on every refresh; a copy used twice signs the session out), and
// every failure turned into an ApiError whose message a person can read.
"use strict";

const REFRESH_KEY = "clipstream.refresh";
/** Videos of the feed's first page, asked with the login (the feed's own pages are as long). */
export const FIRST_PAGE = 10;
const USER_KEY = "clipstream.user";

export class ApiError extends Error {
  constructor(status, message, retryAfter = 0) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

let access = null;        // {token, until}
let refreshing = null;    // one refresh in flight per tab
const listeners = new Set();

/** Called with no argument when the session ends (logout, refresh refused). */
export function onSignedOut(fn) { listeners.add(fn); }

export function me() {
  try { return JSON.parse(localStorage.getItem(USER_KEY) || "null"); } catch { return null; }
}

export function signedIn() { return !!localStorage.getItem(REFRESH_KEY); }

function keep(body) {
  // when the page was signed in, for the bench's "first card after sign-in" (bench/watch.py)
  (window.clipstreamWatch = window.clipstreamWatch || { cards: [], pages: [] }).signedInAt = performance.now();
  access = { token: body.access_token, until: Date.now() + (body.expires_in - 30) * 1000 };
  localStorage.setItem(REFRESH_KEY, body.refresh_token);
  localStorage.setItem(USER_KEY, JSON.stringify({ user_id: body.user_id, username: body.username }));
}

function forget() {
  access = null;
  firstPage = null;
  localStorage.removeItem(REFRESH_KEY);
  localStorage.removeItem(USER_KEY);
}

function describe(status, detail, retryAfter) {
  if (status === 401) return "Your session has ended: please sign in again.";
  if (status === 429) return `Too many requests: please wait ${retryAfter || "a few"} seconds and try again.`;
  if (status === 503) return `The service is busy or restarting: try again in ${retryAfter || "a few"} seconds.`;
  if (status === 413) return "That is too large to send.";
  return detail || `The server answered ${status}.`;
}

async function send(method, path, body, token, keepalive) {
  const headers = {};
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                            cache: "no-store", keepalive: !!keepalive });
  } catch {
    throw new ApiError(0, navigator.onLine === false
      ? "You are offline: check your connection."
      : "The server cannot be reached: check your connection and try again.");
  }
  if (r.ok) return r.status === 204 ? null : r.json();
  let detail = "";
  try { detail = (await r.json()).detail || ""; } catch { /* not JSON */ }
  const retryAfter = parseInt(r.headers.get("Retry-After") || "0", 10) || 0;
  const err = new ApiError(r.status, describe(r.status, detail, retryAfter), retryAfter);
  err.detail = detail;
  throw err;
}

async function rotate() {
  // Tabs share the refresh token: rotate one at a time, each with the newest token, or two tabs
  // would present the same one and the server would (rightly) take it for a stolen copy.
  const run = async () => {
    const token = localStorage.getItem(REFRESH_KEY);
    if (!token) throw new ApiError(401, describe(401));
    try {
      keep(await send("POST", "/v1/auth/refresh", { refresh_token: token }));
    } catch (err) {
      if (err.status === 401) { forget(); listeners.forEach((fn) => fn()); }
      throw err;
    }
  };
  return navigator.locks ? navigator.locks.request("clipstream.refresh", run) : run();
}

async function accessToken() {
  if (access && Date.now() < access.until) return access.token;
  if (!refreshing) refreshing = rotate().finally(() => { refreshing = null; });
  await refreshing;
  return access.token;
}

/** The newest ``read_after`` of this session's likes, follows and views (a stream sequence, as a
 * decimal string: compared as BigInt, it may pass 2^53), or null. */
let lastWrite = null;

/** What the next feed page asks to take in (``after``), or null. */
export function readAfter() {
  return lastWrite;
}

/** A call of the API as the signed-in user; one 401 is answered by a refresh and a retry. */
export async function api(method, path, body, { keepalive = false } = {}) {
  const token = await accessToken();
  let out;
  try {
    out = await send(method, path, body, token, keepalive);
  } catch (err) {
    if (err.status !== 401) throw err;
    access = null;
    out = await send(method, path, body, await accessToken(), keepalive);
  }
  const after = out && out.read_after;  // the API's own token: digits (http/feed.py AFTER_PATTERN)
  if (after && (lastWrite === null || BigInt(after) > BigInt(lastWrite))) lastWrite = after;
  return out;
}

/** The first feed page the login answered with (see ``takeFirstPage``). */
let firstPage = null;

/** The feed page that came with the sign-in, once (null after, or if none came): the feed shows it
 * without a round trip of its own, which on a 150 ms link was most of the time to the first card. */
export function takeFirstPage() {
  const page = firstPage;
  firstPage = null;
  return page && { ...page, with_login: true };
}

export async function login(username, password) {
  try {
    const body = await send("POST", `/v1/auth/login?feed=${FIRST_PAGE}`, { username, password });
    firstPage = body.feed || null;
    keep(body);
  } catch (err) {
    if (err.status === 401) err.message = "Wrong username or password.";
    throw err;
  }
}

export async function register(username, email, password) {
  try {
    await send("POST", "/v1/auth/register", { username, email, password });
  } catch (err) {
    if (err.status === 409) err.message = `That ${err.detail.split(" ")[0] || "name"} is already taken.`;
    throw err;
  }
  await login(username, password);
}

export async function logout() {
  const token = localStorage.getItem(REFRESH_KEY);
  forget();
  if (token) await send("POST", "/v1/auth/logout", { refresh_token: token });
}

/** PUT a file to a presigned URL, reporting progress (fetch cannot report an upload's). */
export function putFile(url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300)
      ? resolve()
      : reject(new ApiError(xhr.status, `The upload was refused by storage (HTTP ${xhr.status}).`));
    xhr.onerror = () => reject(new ApiError(0, "The upload could not reach storage: check your connection."));
    xhr.send(file);
  });
}
