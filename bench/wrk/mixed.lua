-- 1000 feed reads : 1 upload-url : 10 likes, in that exact proportion per thread.
-- args: tokens file, video ids file, number of threads
local tokens, videos, mine, cursors, stride, n, current

function init(args)
  tokens, videos, stride, n = read_lines(args[1]), read_lines(args[2]), tonumber(args[3]), 0
  mine, cursors = {}, {}
  for i = id + 1, #tokens, stride do table.insert(mine, tokens[i]) end
end

function request()
  local slot = n % 1011
  current = n % #mine + 1
  n = n + 1
  local auth = "Bearer " .. mine[current]
  if slot == 0 then
    begin("upload_url")
    return wrk.format("POST", "/v1/videos/upload-url", {["Authorization"] = auth, ["Content-Type"] = "application/json"},
      '{"file_size_bytes":1048576,"file_format":"mp4"}')
  elseif slot <= 10 then
    begin("like")
    local v = videos[math.random(#videos)]
    return wrk.format("POST", "/v1/videos/" .. v .. "/like",
      {["Authorization"] = auth, ["Content-Type"] = "application/json"}, '{"action":"like"}')
  end
  begin("feed")
  local path = "/v1/feed?limit=10"
  if cursors[current] then path = path .. "&cursor=" .. cursors[current] end
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. mine[current]})
end

function response(status, headers, body)
  local was = label  -- common.lua's: the endpoint of this response's request
  finish(status)
  if was == "feed" and status == 200 then
    cursors[current] = body:match('"next_cursor":"([^"]+)"')
  end
end
