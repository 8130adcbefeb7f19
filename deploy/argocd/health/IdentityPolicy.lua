-- Argo CD health of a lanyard.dev IdentityPolicy (docs/gitops.md): Healthy when the controller accepted the current
-- generation (Accepted=True), Degraded with its message when it rejected it (Accepted=False: the policy is ignored),
-- Progressing until the controller has looked at the current generation.
local hs = { status = "Progressing", message = "Waiting for the Lanyard controller to check the policy" }
local generation = obj.metadata.generation
if obj.status == nil or obj.status.conditions == nil then return hs end
if obj.status.observedGeneration ~= nil and generation ~= nil and obj.status.observedGeneration < generation then
  return hs
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Accepted" then
    if c.observedGeneration ~= nil and generation ~= nil and c.observedGeneration < generation then return hs end
    hs.message = c.reason .. ": " .. (c.message or "")
    if c.status == "True" then
      hs.status = "Healthy"
    elseif c.status == "False" then
      hs.status = "Degraded"
    end
    return hs
  end
end
return hs
