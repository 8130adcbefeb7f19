// Types of bench/lib/admission-load.mjs (plain JavaScript, run as its own process by bench:hostile).
import type { Json } from '../../src/kube/client.ts';

/** The AdmissionReview the API server sends for a Pod create in `namespace`. */
export function review(namespace: string, object: Json): Json;
