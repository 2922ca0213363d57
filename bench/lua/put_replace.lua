dofile("common.lua")

function request()
  local body = string.format('{"profile": {"attributes": {"plan": "platinum", "visits": %d}}}', next_count())
  return wrk.format("PUT", "/api/v2/user_profiles?identifier=" .. random_key(), headers, body)
end
