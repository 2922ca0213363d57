dofile("common.lua")

function request()
  return wrk.format("GET", "/api/v2/user_profiles?identifier=" .. random_key(), headers)
end
