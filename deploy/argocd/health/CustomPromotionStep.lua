-- Argo CD health of a lanyard.dev CustomPromotionStep, Kargo's name for a PromotionStep (docs/gitops.md): a step
-- definition has no status of its own, so it is Healthy once it exists; a Stage that cannot use it reports that in
-- its own Valid condition (and health).
return { status = "Healthy", message = "Step definition; Stages that use it report problems in their Valid condition" }
