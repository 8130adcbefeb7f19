// The type of a Kubernetes object read as raw JSON. Objects are never round-tripped through typed models, so fields
// Lanyard does not know are preserved (docs/webhook.md); `any` stays at this one boundary. Neutral: every layer may
// import it (docs/adr/1011-import-boundaries.md).
export type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any
