"""The Lua filter that moves the session token out of Proxy-Authorization.

Clients send proxy credentials as `Proxy-Authorization: Basic base64(user:token)`; jwt_authn cannot
read a JWT wrapped that way. This filter decodes it into `x-sandgate-token` (which jwt_authn reads
and removes) and always strips Proxy-Authorization so the token never travels upstream.
"""

from control_plane.envoy_contract import TOKEN_HEADER

_UNWRAP_TOKEN = r"""
local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local INDEX = {}
for i = 1, 64 do INDEX[ALPHABET:byte(i)] = i - 1 end

local function b64decode(s)
  local out, bits, nbits = {}, 0, 0
  for i = 1, #s do
    local c = s:byte(i)
    if c == 61 then break end
    local v = INDEX[c]
    if v == nil then return nil end
    bits = bits * 64 + v
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      local byte = math.floor(bits / 2 ^ nbits)
      out[#out + 1] = string.char(byte)
      bits = bits - byte * 2 ^ nbits
    end
  end
  return table.concat(out)
end

local function token_of(auth)
  local scheme, value = auth:match("^%s*(%S+)%s+(%S+)%s*$")
  if scheme == nil then return nil end
  scheme = scheme:lower()
  if scheme == "bearer" then return value end
  if scheme ~= "basic" then return nil end
  local decoded = b64decode(value)
  local sep = decoded and decoded:find(":", 1, true)
  return sep and decoded:sub(sep + 1) or nil
end

-- Keep-alive clients repeat the same credentials on every request: decode each one once.
-- Only the unwrapping is cached; jwt_authn verifies the token on every request.
local cache, cached = {}, 0

function envoy_on_request(handle)
  local headers = handle:headers()
  headers:remove("@TOKEN_HEADER@")
  local auth = headers:get("proxy-authorization")
  if auth == nil then return end
  headers:remove("proxy-authorization")
  local token = cache[auth]
  if token == nil then
    token = token_of(auth) or false
    if cached >= 1024 then cache, cached = {}, 0 end
    cache[auth], cached = token, cached + 1
  end
  if token then headers:add("@TOKEN_HEADER@", token) end
end
"""
UNWRAP_TOKEN = _UNWRAP_TOKEN.replace("@TOKEN_HEADER@", TOKEN_HEADER)
