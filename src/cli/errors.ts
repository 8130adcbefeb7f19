// Maps what went wrong on the wire to the one-line messages of docs/cli.md#conventions. The wording is built from the
// request Lanyard made (verb, resource, namespace) and the operation it served, never parsed from the server,
// whose own message is only added under -v.
import { KubeApiError } from '../kube/errors.ts';
import { CliError, EXIT } from './exit.ts';
import { errorMessage } from '../core/errors.ts';

/** What the failing call was for, in the user's terms. */
export interface Operation {
  /** The Lanyard operation, e.g. `create serviceaccounttoken "ci-token"`. */
  does: string;
  /** The object a 404/409 is about, when it is not the one named in the request path (e.g. a POST). */
  object?: { noun: string; name: string };
}

/** A CliError that may carry the server's own message, printed on a second line under -v. */
export class ApiCliError extends CliError {
  constructor(
    message: string,
    exitCode: number,
    readonly serverDetail?: string,
  ) {
    super(message, exitCode);
  }
}

export interface RequestInfo {
  verb: string;
  resource: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** Kubernetes' authorization verb and target for a request, from its method and path. */
export function describeRequest(method: string, path: string): RequestInfo {
  const parts = path.split('?')[0]!.split('/').filter(Boolean).map(decodeURIComponent);
  // /api/v1/... or /apis/<group>/<version>/...
  const rest = parts[0] === 'api' ? parts.slice(2) : parts.slice(3);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest.splice(0, 2);
  }
  const [resource = '', name, subresource] = rest;
  const verb =
    method === 'GET'
      ? name
        ? 'get'
        : 'list'
      : method === 'POST'
        ? 'create'
        : method === 'PUT'
          ? 'update'
          : method === 'PATCH'
            ? 'patch'
            : method === 'DELETE'
              ? name
                ? 'delete'
                : 'deletecollection'
              : method.toLowerCase();
  return { verb, resource, namespace, name, subresource };
}

const SINGULAR: Record<string, string> = {
  namespaces: 'namespace',
  serviceaccounts: 'serviceaccount',
  secrets: 'secret',
  roles: 'role',
  rolebindings: 'rolebinding',
};
function singular(resource: string): string {
  return SINGULAR[resource] ?? resource.replace(/s$/, '');
}

const ESCALATION_MARKER = 'attempting to grant RBAC permissions not currently held';
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
]);

export const UNAUTHENTICATED_MESSAGE =
  'the API server rejected the credentials (401); check LANYARD_TOKEN, the Lanyard config or your kubeconfig';

/** True for errors that mean the API server could not be reached or answered at the transport level. */
export function isNetworkError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as NodeJS.ErrnoException).code;
  return (
    (code !== undefined &&
      (NETWORK_CODES.has(code) || code.startsWith('ERR_TLS') || code.includes('CERT'))) ||
    /request timed out after/.test(e.message) ||
    /certificate|self.signed/i.test(e.message)
  );
}

// Only the request's own namespace is named: a cluster-scoped request (namespaces) is in no project.
function inProject(ns: string | undefined): string {
  return ns ? ` in project "${ns}"` : '';
}

/** Turns a failed API call into the CLI's error line and exit code. */
export function toCliError(e: unknown, op: Operation, server: string): CliError {
  if (e instanceof CliError) return e;
  if (e instanceof KubeApiError) {
    const req = describeRequest(e.method, e.path);
    const where = inProject(req.namespace);
    const target = op.object ?? (req.name ? { noun: singular(req.resource), name: req.name } : undefined);
    const resource = req.subresource ? `${req.resource}/${req.subresource}` : req.resource;
    const detail = e.serverMessage ? `server said: ${e.serverMessage}` : undefined;
    switch (e.status) {
      case 401:
        return new ApiCliError(UNAUTHENTICATED_MESSAGE, EXIT.forbidden, detail);
      case 403: {
        if (e.serverMessage.includes(ESCALATION_MARKER)) {
          const name = req.name ?? op.object?.name ?? '';
          return new ApiCliError(
            `forbidden: Kubernetes refused to ${req.verb} ${singular(req.resource)} "${name}"${where} because it would grant permissions you do not hold yourself`,
            EXIT.forbidden,
            detail,
          );
        }
        return new ApiCliError(
          `forbidden: you may not ${req.verb} ${resource}${where} (needed to ${op.does})`,
          EXIT.forbidden,
          detail,
        );
      }
      case 404:
        if (target)
          return new ApiCliError(`${target.noun} "${target.name}" not found${where}`, EXIT.notFound, detail);
        return new ApiCliError(`${op.does}: ${resource} not found${where}`, EXIT.notFound, detail);
      case 409:
        if (e.reason === 'AlreadyExists' && target) {
          return new ApiCliError(
            `${target.noun} "${target.name}" already exists${where}`,
            EXIT.refused,
            detail,
          );
        }
        return new ApiCliError(
          `cannot ${op.does}${where}: it was changed by someone else meanwhile (409 ${e.reason}); run the command again`,
          EXIT.refused,
          detail,
        );
      default:
        return new ApiCliError(
          `cannot ${op.does}${where}: the API server answered ${e.status} ${e.reason}${e.serverMessage ? `: ${e.serverMessage}` : ''}`,
          EXIT.failure,
        );
    }
  }
  if (isNetworkError(e)) {
    const err = e as NodeJS.ErrnoException & { syscall?: string };
    const cause = err.syscall && err.code ? `${err.syscall} ${err.code}` : err.message;
    return new CliError(`cannot reach the API server at ${server}: ${cause}`, EXIT.failure);
  }
  return new CliError(`cannot ${op.does}: ${errorMessage(e)}`, EXIT.failure);
}
