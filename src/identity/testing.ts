// Fixtures shared by the identity and webhook tests and the benchmark: default flags and an RFC 6902 `add` applier
// (the only op the webhook emits) that fails loudly on a path that does not exist, as the API server would.
import type { Json } from '../core/json.ts';
import type { InjectionFlags } from './resolve.ts';
import type { JsonPatchOp } from './patch.ts';

export const TEST_FLAGS: InjectionFlags = Object.freeze({
  annotationPrefix: 'eks.amazonaws.com',
  tokenAudience: 'sts.amazonaws.com',
  tokenMountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount',
  tokenExpiration: 86400,
  awsDefaultRegion: '',
  stsRegionalEndpoint: false,
  containerCredentialsAudience: 'pods.eks.amazonaws.com',
  containerCredentialsTokenMountPath: '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount',
  containerCredentialsTokenVolumeName: 'eks-pod-identity-token',
  containerCredentialsTokenPath: 'eks-pod-identity-token',
  containerCredentialsFullUri: 'http://169.254.170.23/v1/credentials',
});

function unescape(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Applies `add` ops to a deep copy; throws on a missing parent, a bad index or an existing non-null member. */
export function applyAddPatch(doc: Json, ops: JsonPatchOp[]): Json {
  const out = structuredClone(doc);
  for (const op of ops) {
    if (op.op !== 'add') throw new Error(`unexpected op ${op.op}`);
    const segs = op.path.split('/').slice(1).map(unescape);
    const last = segs.pop()!;
    let parent: Json = out;
    for (const s of segs) {
      if (parent === null || typeof parent !== 'object' || !(s in parent)) throw new Error(`path ${op.path}: missing ${s}`);
      parent = parent[s];
    }
    if (Array.isArray(parent)) {
      if (last !== '-') throw new Error(`path ${op.path}: only appends are expected`);
      parent.push(structuredClone(op.value));
    } else if (parent !== null && typeof parent === 'object') {
      if (parent[last] !== undefined && parent[last] !== null) throw new Error(`path ${op.path}: would replace an existing member`);
      parent[last] = structuredClone(op.value);
    } else throw new Error(`path ${op.path}: parent is not a container`);
  }
  return out;
}
