-- Argo CD health of a lanyard.dev VerifiedIdentity (docs/gitops.md). The controller writes these after a credential
-- exchange proved an identity; the webhook trusts one until spec.expiresAt (less a few seconds). Healthy until then;
-- Suspended after: Lanyard deletes it and verifies the next Pod of the ServiceAccount again, an event outside this
-- object. Timestamps are RFC 3339 in UTC, so comparing the strings compares the times (Argo CD's Lua sandbox has no
-- string library to parse them; os.date with "!" is UTC whatever the controller's time zone).
local hs = { status = "Progressing", message = "Incomplete VerifiedIdentity: spec.expiresAt is missing" }
if obj.spec == nil or obj.spec.expiresAt == nil then return hs end
local who = "ServiceAccount " .. (obj.spec.serviceAccount or "?")
local role = obj.spec.assumedRoleARN or obj.spec.roleARN or "?"
local os = require("os")  -- Argo CD preloads a safe os library (time, date) but sets no global for it
local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
if obj.spec.expiresAt > now then
  hs.status = "Healthy"
  hs.message = who .. " proved " .. role .. " at " .. (obj.spec.verifiedAt or "?") .. " (" ..
      (obj.spec.verifiedWith or "?") .. "); trusted until " .. obj.spec.expiresAt
else
  hs.status = "Suspended"
  hs.message = "Expired at " .. obj.spec.expiresAt .. "; the next Pod of " .. who .. " is verified again"
end
return hs
