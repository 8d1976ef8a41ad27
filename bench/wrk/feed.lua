-- GET /v1/feed?limit=10 as distinct users: thread i serves users i, i+T, i+2T, ... in turn, and
-- each user follows the next_cursor of its own previous page.
-- args: tokens file, number of threads
local tokens, cursors, turn, current

function init(args)
  tokens, cursors, turn = {}, {}, 0
  local all, stride = read_lines(args[1]), tonumber(args[2])
  for i = id + 1, #all, stride do table.insert(tokens, all[i]) end
end

function request()
  current = turn % #tokens + 1
  turn = turn + 1
  local path = "/v1/feed?limit=10"
  if cursors[current] then path = path .. "&cursor=" .. cursors[current] end
  begin("feed")
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. tokens[current]})
end

function response(status, headers, body)
  finish(status)
  if status == 200 then
    cursors[current] = body:match('"next_cursor":"([^"]+)"')  -- nil at the end: a new page next time
  end
end
