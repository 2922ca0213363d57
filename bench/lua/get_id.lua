dofile("common.lua")

function request()
  return wrk.format("GET", "/api/v2/user_profiles/" .. random_key(), headers)
end
