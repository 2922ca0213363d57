dofile("common.lua")

function request()
  local body = string.format('{"profile": {"attributes": {"visits": %d, "seen": null}}}', next_count())
  return wrk.format("PATCH", "/api/v2/user_profiles/" .. random_key(), headers, body)
end
