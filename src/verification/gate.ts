// The decision at admission (docs/verified-start.md, docs/security.md §2), as a pure function over cached state:
// every identity any container of the Pod can use must be allowed by IdentityPolicy, readable, and either proven
// already or held at the gate until the verifier proves it.
import type { Pod } from 'kubernetes-types/core/v1.js';
import type {
  AdmissionGuard,
  AssociationIdentity,
  GateSkipReason,
  NoIdentityContext,
  ResolvedIdentity,
} from '../identity/sources.ts';
import {
  CONTAINER_LISTS,
  podCredentials,
  type CredentialOptions,
  type PodCredential,
} from '../identity/pod-credentials.ts';
import { decidePolicy, type PolicySet } from './policy.ts';
import { checkRoleArn } from '../core/arn.ts';
import { quoteBounded } from '../runtime/text.ts';
import {
  GATE_NAME,
  OPT_OUT_ANNOTATION,
  fingerprintOf,
  verifiedEntryTrusted,
  verifiedIdentityName,
  type IdentityKey,
} from './verified-identity.ts';
import type { VerifiedIdentity } from './types.ts';

export type GateDecision = ReturnType<AdmissionGuard['decide']>;

export interface GateInput {
  /** The Pod as it will be stored: the request's object with Lanyard's own patch applied. */
  pod: Pod;
  /** UPDATE of `pods/ephemeralcontainers`: the Pod before it. */
  oldPod?: Pod;
  namespace: string;
  serviceAccount: string;
  /** What the identity sources give the pair (undefined: none). */
  identity?: ResolvedIdentity;
  /** When `identity` is undefined on CREATE: what the sources were asked, for the identity-required refusal. */
  noIdentity?: NoIdentityContext;
  /** The pair's owner association: the role container credentials get. */
  association?: AssociationIdentity;
  credentials: CredentialOptions;
  policies: PolicySet;
  namespaceLabels: Record<string, string> | undefined;
  /** The VerifiedIdentity of that name in the namespace, from the cache. */
  verified: (name: string) => VerifiedIdentity | undefined;
  gateEnabled: boolean;
  allowOptOut: boolean;
  nowMs: number;
}

/** One identity to decide on, with where it comes from for messages. */
interface Candidate {
  key: IdentityKey;
  /** `container "app", field spec.containers[0].env[AWS_ROLE_ARN]`, or the source. */
  where: string;
  /** The source's fingerprint when the sources give exactly this identity; else it can only be proven by an exchange. */
  fingerprint?: string;
}

const sameKey = (a: IdentityKey, b: IdentityKey) =>
  a.mode === b.mode &&
  (a.roleARN ?? '') === (b.roleARN ?? '') &&
  (a.targetRoleARN ?? '') === (b.targetRoleARN ?? '') &&
  a.audience === b.audience;

function keyOf(c: PodCredential, i: GateInput): IdentityKey {
  if (c.mode === 'WebIdentity')
    return { mode: c.mode, serviceAccount: i.serviceAccount, roleARN: c.roleARN, audience: c.audience };
  // Container credentials: EKS answers with the association's role, whatever the container says.
  const a = i.association;
  return {
    mode: c.mode,
    serviceAccount: i.serviceAccount,
    roleARN: a?.roleARN,
    targetRoleARN: a?.targetRoleARN,
    audience: c.audience,
  };
}

const containerNames = (pod: Pod) =>
  new Set<string>(
    CONTAINER_LISTS.flatMap((l) => {
      const list: unknown = pod?.spec?.[l];
      return (Array.isArray(list) ? list : []).map((c: { name?: string } | null) => c?.name as string);
    }),
  );

function podName(pod: Pod): string {
  return pod?.metadata?.name || pod?.metadata?.generateName || '<unnamed>';
}

/** CREATE, and UPDATE of `pods/ephemeralcontainers`. */
export function decidePod(i: GateInput): GateDecision {
  const who = `Pod "${i.namespace}/${podName(i.pod)}"`;
  const creds = podCredentials(i.pod, i.credentials);
  // On an UPDATE only what the request adds is new; the rest was decided when the Pod was created.
  const before = i.oldPod ? containerNames(i.oldPod) : undefined;
  const isNew = (c: { container: { name: string } }) => !before || !before.has(c.container.name);
  const bad = creds.unreadable.find(isNew);
  if (bad) {
    return {
      kind: 'deny',
      message:
        `lanyard: ${who}, container "${bad.container.name}", field ${bad.field}: ${bad.reason}; ` +
        'set the AWS variables with a literal value, or remove the token (docs/security.md)',
    };
  }
  const candidates = candidatesOf(i, creds.identities.filter(isNew));
  if (candidates.length === 0) {
    const refusal = i.oldPod ? undefined : identityRequiredRefusal(i, who);
    return refusal ? { kind: 'deny', message: refusal } : { kind: 'allow', gate: false };
  }
  const denial = roleArnDenial(who, candidates) ?? policyDenial(i, who, candidates);
  if (denial) return denial;
  if (!i.gateEnabled) return { kind: 'allow', gate: false };
  const proven = (c: Candidate) =>
    c.fingerprint !== undefined &&
    verifiedEntryTrusted(i.verified(verifiedIdentityName(c.key)), c.key, c.fingerprint, i.nowMs);
  const unproven = candidates.filter((c) => !proven(c));
  return i.oldPod ? decideStartedPod(i, i.oldPod, who, unproven) : decideNewPod(i, who, unproven);
}

/** The identities the new containers can use, then the source's own (decided even when no container uses it, as the
 * reference webhook would inject it; CREATE only); each once. */
function candidatesOf(i: GateInput, identities: PodCredential[]): Candidate[] {
  const candidates: Candidate[] = [];
  const add = (c: Candidate) => {
    if (!candidates.some((x) => sameKey(x.key, c.key))) candidates.push(c);
  };
  const src = i.identity;
  const srcKey: IdentityKey | undefined = src && {
    mode: src.mode,
    serviceAccount: src.serviceAccount,
    roleARN: src.roleARN,
    targetRoleARN: src.targetRoleARN,
    audience: src.audience,
  };
  const srcFingerprint = src && fingerprintOf(src.fingerprint);
  for (const c of identities) {
    const key = keyOf(c, i);
    add({
      key,
      where: `container "${c.container.name}", field ${c.field}`,
      fingerprint: srcKey && sameKey(key, srcKey) ? srcFingerprint : undefined,
    });
  }
  if (srcKey && !i.oldPod)
    add({
      key: srcKey,
      where: `the ServiceAccount's ${src!.source.replace('_', ' ')}`,
      fingerprint: srcFingerprint,
    });
  return candidates;
}

/** A role named in the Pod is checked against IAM's grammar first, so nothing unbounded is matched or echoed. */
function roleArnDenial(who: string, candidates: Candidate[]): GateDecision | undefined {
  for (const c of candidates) {
    const arn =
      c.key.mode === 'WebIdentity' && c.key.roleARN !== undefined ? checkRoleArn(c.key.roleARN) : undefined;
    if (arn && !arn.ok)
      return {
        kind: 'deny',
        message: `lanyard: ${who}, ${c.where}: AWS_ROLE_ARN ${quoteBounded(c.key.roleARN)} ${arn.rule}`,
      };
  }
  return undefined;
}

function policyDenial(i: GateInput, who: string, candidates: Candidate[]): GateDecision | undefined {
  for (const c of candidates) {
    const d = decidePolicy(i.policies, {
      namespace: i.namespace,
      namespaceLabels: i.namespaceLabels,
      serviceAccount: i.serviceAccount,
      roleARN: c.key.roleARN,
      targetRoleARN: c.key.targetRoleARN,
    });
    // The policy's own sentence first (docs/verified-start.md), then where the Pod names the role.
    // Then what to do: the rule that would allow it (docs/verified-start.md, "When a Pod is denied").
    if (!d.allowed)
      return {
        kind: 'deny',
        message: `${d.message}: ${who}, ${c.where}${d.fix ? `. ${d.fix[0]!.toUpperCase()}${d.fix.slice(1)}` : ''}`,
      };
  }
  return undefined;
}

/** An ephemeral container added to a Pod: one still at the gate is proven in full before release; a released one may
 * only reuse what it had. */
function decideStartedPod(i: GateInput, oldPod: Pod, who: string, unproven: Candidate[]): GateDecision {
  const gated = (oldPod.spec?.schedulingGates ?? []).some((g) => g?.name === GATE_NAME);
  if (gated) return { kind: 'allow', gate: false };
  const had = podCredentials(oldPod, i.credentials).identities.map((c) => keyOf(c, i));
  const fresh = unproven.find((c) => !had.some((k) => sameKey(k, c.key)));
  if (!fresh) return { kind: 'allow', gate: false };
  return {
    kind: 'deny',
    message:
      `lanyard: ${who} has started; ${fresh.where}, would use ${describe(fresh.key)}, which was not proven for it: ` +
      'an identity is proven before a container starts, so add it to a new Pod (docs/security.md)',
  };
}

/** A new Pod: gated until every identity is proven, unless all are proven already or it opted out. */
function decideNewPod(i: GateInput, who: string, unproven: Candidate[]): GateDecision {
  const skip = (skipReason: GateSkipReason): GateDecision => ({ kind: 'allow', gate: false, skipReason });
  if (unproven.length === 0) return skip('verified');
  // Opting out skips the proof of roles the policy has checked; a role known only from the exchange is always proven.
  if (
    i.allowOptOut &&
    i.pod?.metadata?.annotations?.[OPT_OUT_ANNOTATION] === 'false' &&
    unproven.every((c) => c.key.roleARN)
  )
    return skip('opt_out');
  if (typeof i.pod?.spec?.nodeName === 'string' && i.pod.spec.nodeName !== '') {
    // The API server refuses scheduling gates on bound Pods, so nothing could hold this one back.
    return {
      kind: 'deny',
      message:
        `lanyard: ${who} is bound to node "${i.pod.spec.nodeName}" at creation, so it cannot wait for ` +
        `verification; ${unproven[0]!.where}, would use ${describe(unproven[0]!.key)}, which is not proven yet. Leave spec.nodeName empty (docs/security.md)`,
    };
  }
  return { kind: 'allow', gate: true };
}

/** The opt-in label, on a Namespace or a Pod (docs/adr/0920-identity-required.md). */
export const IDENTITY_REQUIRED_LABEL = 'lanyard.dev/identity-required';

/**
 * Whether the Pod must have an AWS identity: its own label decides when set, else its namespace's. A value other than
 * "true" or "false" is an error, named with the object that carries it.
 */
export function identityRequired(
  podLabels: Record<string, unknown> | undefined,
  namespace: string,
  namespaceLabels: Record<string, string> | undefined,
): { required: boolean; where: string; invalid?: string } {
  const judge = (v: unknown, where: string) =>
    v === 'true' || v === 'false'
      ? { required: v === 'true', where }
      : {
          required: true,
          where,
          invalid: `${where} has label ${IDENTITY_REQUIRED_LABEL}=${quoteBounded(String(v))}; the value must be "true" or "false"`,
        };
  const own = podLabels?.[IDENTITY_REQUIRED_LABEL];
  if (own !== undefined) return judge(own, 'the Pod');
  const ns = namespaceLabels?.[IDENTITY_REQUIRED_LABEL];
  if (ns !== undefined) return judge(ns, `namespace "${namespace}"`);
  return { required: false, where: '' };
}

/** The 403 text for a Pod that needs an identity and gets none, naming the ServiceAccount and what is missing. */
function identityRequiredRefusal(i: GateInput, who: string): string | undefined {
  const r = identityRequired(i.pod?.metadata?.labels, i.namespace, i.namespaceLabels);
  if (!r.required) return undefined;
  const sa = `ServiceAccount "${i.namespace}/${i.serviceAccount}"`;
  const head = r.invalid
    ? `lanyard: ${who}: ${r.invalid}, so an AWS identity is required, but ${sa}`
    : `lanyard: ${who} requires an AWS identity (label ${IDENTITY_REQUIRED_LABEL}="true" on ${r.where}), but ${sa}`;
  const n = i.noIdentity;
  const prefix = n?.annotationPrefix ?? 'eks.amazonaws.com';
  let why: string;
  if (n?.serviceAccount === 'not_found') why = 'does not exist';
  else if (n?.serviceAccount === 'unresolved')
    why = `could not be read in time, so its ${prefix}/role-arn annotation is unknown; retry the create`;
  else {
    const missing = [`no ${prefix}/role-arn annotation`, 'no PodIdentityAssociation'];
    if (n?.configMap)
      missing.push(
        `no entry "${i.namespace}/${i.serviceAccount}" or "*/${i.serviceAccount}" in the pod-identity-webhook ConfigMap`,
      );
    if (n?.identitiesFile) missing.push('no entry in the container-credentials identities file');
    why = `has no identity: ${missing.join(', ')}`;
  }
  return (
    `${head} ${why}. Annotate the ServiceAccount with ${prefix}/role-arn or create a PodIdentityAssociation for it, ` +
    `or label the Pod ${IDENTITY_REQUIRED_LABEL}=false (docs/verified-start.md)`
  );
}

function describe(k: IdentityKey): string {
  const role = k.targetRoleARN || k.roleARN;
  return `${k.mode} role ${role ? `"${role}"` : '<from the association>'} (audience "${k.audience}")`;
}
