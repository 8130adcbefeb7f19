// The association's `Ready` condition with the Pods left without it (docs/identities.md, docs/associations.md). Pure.
import type { Cond } from '../associations/decide.ts';

/**
 * Appends the count of running Pods of the pair that lack the association's identity. The status stays as derived:
 * the association itself works, and `kubectl wait --for=condition=Ready` must not hang on Pods that predate it.
 */
export function readyWithPodsWithoutIdentity(
  ready: Cond,
  missing: number,
  namespace: string,
  serviceAccount: string,
): Cond {
  if (missing <= 0) return ready;
  const pods = missing === 1 ? '1 running Pod' : `${missing} running Pods`;
  return {
    ...ready,
    message:
      `${ready.message}; ${pods} of ServiceAccount ${namespace}/${serviceAccount} started before the association and ` +
      `run without its identity: restart ${missing === 1 ? 'it' : 'them'} (lanyard get identities -n ${namespace})`,
  };
}
