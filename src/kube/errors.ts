// API errors, without the client (docs/adr/0703-start-path-bundling.md): src/kube/client.ts re-exports them.

/** A non-2xx answer from the API server, with the Status object it sent. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    readonly reason: string,
    readonly serverMessage: string,
    /** What the server answered: a Status object, or the text of an answer that is not JSON. */
    readonly body: unknown,
  ) {
    super(`${method} ${path}: ${status} ${reason}: ${serverMessage}`);
    this.name = 'KubeApiError';
  }
}

export function isNotFound(e: unknown): boolean {
  return e instanceof KubeApiError && e.status === 404;
}
/**
 * For `.catch()`: a 404 becomes undefined (the object is absent or already gone, or its kind is not installed),
 * anything else is rethrown.
 */
export function orUndefinedIfNotFound(e: unknown): undefined {
  if (isNotFound(e)) return undefined;
  throw e;
}
/** A GET where a 404 means absent (the object, or its kind, is not there): undefined then; other errors are thrown. */
export function getOrUndefined<T = unknown>(
  kube: { get<R>(path: string): Promise<R> },
  path: string,
): Promise<T | undefined> {
  return kube.get<T>(path).catch(orUndefinedIfNotFound);
}
export function isConflict(e: unknown): boolean {
  return e instanceof KubeApiError && e.status === 409;
}
export function isAlreadyExists(e: unknown): boolean {
  return e instanceof KubeApiError && e.status === 409 && e.reason === 'AlreadyExists';
}
