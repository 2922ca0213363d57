dofile("common.lua")

-- Each request a new email, so every one creates a profile, a user and an identity.
function request()
  local email = string.format("new-%s-%d-%d%%40bench.example", nonce, tid, next_count())
  return wrk.format("PUT", "/api/v2/user_profiles?identifier=benchnew:customer:email:" .. email,
    headers, '{"profile": {"attributes": {"plan": "gold", "visits": 1}}}')
end
