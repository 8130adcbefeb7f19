-- Argo CD health of a lanyard.dev Promotion (docs/gitops.md), by phase: Pending and Running are Progressing (the
-- message says what it waits for, e.g. another promotion or the identity gate), Succeeded is Healthy, and Failed,
-- Errored and Aborted are Degraded: the promotion that Git asked for did not happen.
local hs = { status = "Progressing", message = "Waiting for the Lanyard controller to start the promotion" }
if obj.status == nil or obj.status.phase == nil then return hs end
local phase = obj.status.phase
local message = obj.status.message
if message == nil or message == "" then message = phase end
hs.message = phase .. ": " .. message
if phase == "Succeeded" then
  hs.status = "Healthy"
elseif phase == "Failed" or phase == "Errored" or phase == "Aborted" then
  hs.status = "Degraded"
end
return hs
