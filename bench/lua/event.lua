dofile("common.lua")

function request()
  local body = string.format(
    '{"event": {"source": "shop", "type": "page_view", "properties": {"page": "/p/%d"}}}', next_count())
  return wrk.format("POST", "/api/v2/user_profiles/" .. random_key() .. "/events", headers, body)
end
