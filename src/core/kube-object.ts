// The shape every Kubernetes object shares, for code that handles objects of any kind (the client, the shared cache,
// Events, server-side apply). Kinds are typed from the `kubernetes-types` definitions (RFC 3339 strings, as the API
// sends them) and Lanyard's own kinds in the module that owns each; `Json` stays only at the raw JSON boundary
// (docs/adr/1050-typed-kubernetes-objects.md). Type-only: nothing of this file exists at run time.
import type { ListMeta, ObjectMeta } from 'kubernetes-types/meta/v1.js';

export type { ObjectMeta, ListMeta };

/** Any Kubernetes object: `apiVersion`, `kind` and `metadata`, every other field of its kind unknown here. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

/** A list answer of the API server (`items` of one kind, `metadata.continue` for the next page). */
export interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: ListMeta;
  items: T[];
}

/**
 * An object as the API server returns it once stored: `kubernetes-types` leaves every field optional (a manifest may
 * omit them), but a stored object always has its name, uid, resourceVersion and creationTimestamp.
 */
export type Stored<T extends KubeObject> = T & {
  metadata: ObjectMeta & { name: string; uid: string; resourceVersion: string; creationTimestamp: string };
};
