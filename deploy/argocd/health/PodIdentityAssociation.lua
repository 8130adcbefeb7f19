-- Argo CD health of a lanyard.dev PodIdentityAssociation (docs/gitops.md). Healthy only when the identity is usable:
-- Synced=True and Ready=True for the current generation. Degraded when the controller reports a failure it will not
-- get past by itself (it raises a Warning Event for each): Synced=False (PolicyDenied, RoleNotFound, InvalidSpec,
-- AccessDenied, ClusterNotFound, LimitExceeded, Duplicate, AWSError, DeleteFailed), or Verified=False (RoleMismatch,
-- ExchangeFailed, VerificationTimeout) once it has lasted past the verifier's deadline. Progressing otherwise: not yet
-- observed, retrying while IAM propagates a new role (RolePropagating), waiting for another object to let go
-- (Reconciling), or waiting for the credential exchange that proves the identity (Verifying, ProbeFailed).
local hs = { status = "Progressing", message = "Waiting for the Lanyard controller to reconcile the association" }

local function condition(t)
  if obj.status ~= nil and obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == t then return c end
    end
  end
  return nil
end

local function describe(c)
  if c.message ~= nil and c.message ~= "" then return c.reason .. ": " .. c.message end
  return c.reason
end

-- The verifier reports every failed exchange at once and retries until the Pod's verify deadline (--verify-deadline,
-- 5 minutes by default): a younger failure may still be IAM or EKS propagating, so it is shown but not yet Degraded.
local os = require("os")  -- Argo CD preloads a safe os library (time, date) but sets no global for it
local DEADLINE_MINUTES = 5
local function pastDeadline(c)
  if c.reason == "VerificationTimeout" or c.lastTransitionTime == nil then return true end
  local t = os.date("!*t")
  t.min = t.min - DEADLINE_MINUTES
  -- os.time reads the table in the controller's time zone and os.date without "!" writes in it: the round trip keeps
  -- the UTC wall clock, normalised (RFC 3339 UTC strings compare like the times they denote).
  return c.lastTransitionTime <= os.date("%Y-%m-%dT%H:%M:%SZ", os.time(t))
end

local generation = obj.metadata.generation
if obj.status == nil or obj.status.observedGeneration == nil or
    (generation ~= nil and obj.status.observedGeneration < generation) then
  return hs
end

local synced = condition("Synced")
local verified = condition("Verified")
local ready = condition("Ready")
if synced == nil or (synced.observedGeneration ~= nil and generation ~= nil and synced.observedGeneration < generation) then
  return hs
end

if synced.status == "False" then
  hs.message = describe(synced)
  if synced.reason ~= "RolePropagating" then hs.status = "Degraded" end
  return hs
end
if synced.status ~= "True" then
  hs.message = describe(synced)
  return hs
end

if verified ~= nil and verified.status == "False" then
  hs.message = describe(verified)
  if pastDeadline(verified) then
    hs.status = "Degraded"
  else
    hs.message = hs.message .. " (retrying since " .. verified.lastTransitionTime .. ")"
  end
  return hs
end
if ready ~= nil and ready.status == "True" and verified ~= nil and verified.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(verified)
  return hs
end
if verified ~= nil then
  hs.message = describe(verified)
else
  hs.message = "Synced; waiting for the credential exchange that verifies the identity"
end
return hs
