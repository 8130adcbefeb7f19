-- Argo CD health of a lanyard.dev Stage (docs/gitops.md): Healthy when the controller found it promotable for the
-- current generation (Valid=True), Degraded with the reason when it did not (Valid=False: a step, ServiceAccount or
-- role it needs is missing or not allowed), Progressing until the controller has checked the current generation.
-- Promotions running on the Stage do not change its health; each Promotion has its own.
local hs = { status = "Progressing", message = "Waiting for the Lanyard controller to check the stage" }
local generation = obj.metadata.generation
if obj.status == nil or obj.status.conditions == nil then return hs end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Valid" then
    if c.observedGeneration ~= nil and generation ~= nil and c.observedGeneration < generation then return hs end
    hs.message = c.reason .. ": " .. (c.message or "")
    if c.status == "True" then
      hs.status = "Healthy"
      if obj.status.currentPromotion ~= nil and obj.status.currentPromotion ~= "" then
        hs.message = hs.message .. "; promotion " .. obj.status.currentPromotion .. " is running"
      end
    elseif c.status == "False" then
      hs.status = "Degraded"
    end
    return hs
  end
end
return hs
