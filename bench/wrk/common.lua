-- Shared by every bench script (prepended by bench/wrk.py). One connection per thread, so a
-- response always belongs to the thread's last request: per-user cursors and per-endpoint
-- latencies need no request ids.
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } cs_timespec; int clock_gettime(int, cs_timespec *); ]]
local ts = ffi.new("cs_timespec")

local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads, next_id = {}, 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local function read_lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then table.insert(out, line) end
  end
  return out
end

-- Per-thread state (globals live in each thread's own Lua state). done() reads it with
-- thread:get, which copies flat arrays but crashes wrk 4.1 on nested or string-keyed tables:
-- hence one flat latency array per endpoint.
local LABELS = {"feed", "like", "upload_url"}
sent, ok, bad = 0, 0, 0
lat_feed, lat_like, lat_upload_url = {}, {}, {}
local lat = {feed = lat_feed, like = lat_like, upload_url = lat_upload_url}
local label, started

local function begin(l)
  label, started = l, now_us()
  sent = sent + 1
end

local function finish(status)
  table.insert(lat[label], now_us() - started)
  if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  local i = math.ceil(#sorted * p / 100)
  if i < 1 then i = 1 end
  return sorted[i]
end

function done(summary, latency, requests)
  local total = {sent = 0, ok = 0, bad = 0}
  local per = {}
  for _, t in ipairs(threads) do
    total.sent = total.sent + t:get("sent")
    total.ok = total.ok + t:get("ok")
    total.bad = total.bad + t:get("bad")
    for _, l in ipairs(LABELS) do
      per[l] = per[l] or {}
      for _, v in ipairs(t:get("lat_" .. l)) do table.insert(per[l], v) end
    end
  end
  local parts = {}
  for l, values in pairs(per) do
    if #values > 0 then
    table.sort(values)
    table.insert(parts, string.format('"%s":{"n":%d,"p50_us":%d,"p99_us":%d}', l, #values,
      percentile(values, 50), percentile(values, 99)))
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d},"sent":%d,"ok":%d,"bad":%d,"endpoints":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    total.sent, total.ok, total.bad, table.concat(parts, ",")))
end
