dofile("common.lua")

-- Each request a new email, so every one creates a profile, a user and an identity. The email
-- starts with random digits, so that new keys land all over the indexes as real ones do, not
-- one after another at the end of each; the thread and a count keep every key new.
function request()
  local email = string.format("%08x-%s-%d-%d%%40bench.example",
    math.random(0, 0x7fffffff), nonce, tid, next_count())
  return wrk.format("PUT", "/api/v2/user_profiles?identifier=benchnew:customer:email:" .. email,
    headers, '{"profile": {"attributes": {"plan": "gold", "visits": 1}}}')
end
