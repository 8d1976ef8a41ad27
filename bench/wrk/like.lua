-- POST /v1/videos/{id}/like: request g (g = n * threads + thread id) likes video
-- (g div U + u * 7) mod V as user u = g mod U, so no (user, video) pair repeats before U * V.
-- args: tokens file, video ids file, number of threads
local tokens, videos, stride, n

function init(args)
  tokens, videos, stride, n = read_lines(args[1]), read_lines(args[2]), tonumber(args[3]), 0
end

function like_pair(g)
  local u = g % #tokens
  local k = math.floor(g / #tokens)
  return u + 1, (k + u * 7) % #videos + 1
end

function request()
  local u, v = like_pair(n * stride + id)
  n = n + 1
  begin("like")
  return wrk.format("POST", "/v1/videos/" .. videos[v] .. "/like",
    {["Authorization"] = "Bearer " .. tokens[u], ["Content-Type"] = "application/json"}, '{"action":"like"}')
end

function response(status, headers, body)
  finish(status)
end
