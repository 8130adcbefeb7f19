// `lanyard doctor` checks for IdentityPolicy (docs/verified-start.md#identitypolicy): no policy at all (everything allowed), policies
// ignored for an invalid pattern, and with `--policy-preview [file]` the identities in use that the cluster's
// policies (plus those in the file) would deny. And the identities themselves (docs/verified-start.md, "lanyard
// doctor"): Pods held at the gate, associations not Ready, Pods carrying static AWS keys. Each is a pure function over
// one view of the cluster (IDENTITY_CHECKS), so a check is one function more.
import fs from 'node:fs';
import type { Command } from 'commander';
import type { Cli, DoctorContext, DoctorFinding } from '../cli/framework.ts';
import { CliError, EXIT } from '../cli/exit.ts';
import type { Container, EnvVar, Namespace, Pod, ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { KubeClient } from '../kube/client.ts';
import type { KubeList, KubeObject } from '../core/kube-object.ts';
import type { Condition } from '../kube/conditions.ts';
import type { PodIdentityAssociation } from '../associations/types.ts';
import type { IdentityPolicy } from './types.ts';
import type { AnyEvent } from './gate-notes.ts';
import { readManifests } from '../kube/apply.ts';
import { humanDuration } from '../cli/age.ts';
import { CONTAINER_LISTS, credentialOptions, podCredentials } from '../identity/pod-credentials.ts';
import { PolicyCompiler, decidePolicy } from './policy.ts';
import { GATE_NAME, VERIFICATION_ANNOTATION, VI_API } from './verified-identity.ts';
import {
  VERIFIER_EVENTS_SELECTOR,
  gateFixHint,
  gateNoteOf,
  latestGateNotes,
  type GateNote,
} from './gate-notes.ts';
import { identitySnapshot, type IdentityRow } from '../identities/snapshot.ts';
import { PROBLEM_STATES } from '../identities/decide.ts';

const ROLE_ANNOTATION = 'eks.amazonaws.com/role-arn';

export interface IdentityInUse {
  object: string;
  namespace: string;
  serviceAccount: string;
  roleARN: string;
  targetRoleARN?: string;
}

/** Pure: the findings for a set of policies and the identities in use. */
export function policyFindings(
  policyObjects: IdentityPolicy[],
  inUse: IdentityInUse[],
  labels: Map<string, Record<string, string>>,
  preview: boolean,
): DoctorFinding[] {
  const set = new PolicyCompiler().compileAll(policyObjects);
  const out: DoctorFinding[] = [];
  if (!set.present) {
    out.push({
      level: 'warning',
      object: 'identitypolicies',
      text: 'no IdentityPolicy exists: any namespace may use any role',
      fix: 'create an IdentityPolicy (the first one turns on default-deny); check its effect first with: lanyard doctor --policy-preview <file>',
    });
  }
  for (const p of set.policies) {
    if (!p.accepted)
      out.push({
        level: 'error',
        object: `identitypolicy ${p.name}`,
        text: `ignored: ${p.invalidMessage}`,
        fix: 'correct the entry; until then the policy allows nothing',
      });
  }
  if (preview) {
    const previewSet = set.present ? set : { present: true, policies: [] };
    for (const id of inUse) {
      const d = decidePolicy(previewSet, {
        namespace: id.namespace,
        namespaceLabels: labels.get(id.namespace),
        serviceAccount: id.serviceAccount,
        roleARN: id.roleARN,
        targetRoleARN: id.targetRoleARN,
      });
      if (!d.allowed)
        out.push({
          level: 'warning',
          object: id.object,
          text: `would be denied: ${d.message.replace(/^lanyard: /, '')}`,
        });
    }
  }
  return out;
}

export function registerPolicyDoctor(cli: Cli): void {
  const doctor = cli.program.commands.find((c: Command) => c.name() === 'doctor');
  doctor?.option(
    '--policy-preview [file]',
    "list identities in use that IdentityPolicies (the cluster's plus those in the file) would deny",
  );
  cli.doctorCheck({
    name: 'identitypolicies',
    async run(ctx) {
      const previewOpt = doctor?.opts().policyPreview as string | boolean | undefined;
      let extra: IdentityPolicy[] = [];
      if (typeof previewOpt === 'string') {
        if (!fs.existsSync(previewOpt))
          throw new CliError(`--policy-preview: file "${previewOpt}" not found`, EXIT.usage);
        extra = readManifests<IdentityPolicy>(previewOpt)
          .filter((o) => o?.kind === 'IdentityPolicy')
          .map((o, i) => ({
            ...o,
            metadata: { ...o.metadata, uid: o.metadata?.uid ?? `preview-${i}`, generation: 1 },
          }));
      }
      const kube = await ctx.kube();
      const policies = (await kube.get<KubeList<IdentityPolicy>>(`${VI_API}/identitypolicies`)).items ?? [];
      if (!previewOpt) return policyFindings(policies, [], new Map(), false);
      const [sas, assocs, nss] = await Promise.all([
        kube.get<KubeList<ServiceAccount>>('/api/v1/serviceaccounts'),
        kube
          .get<KubeList<PodIdentityAssociation>>(`${VI_API}/podidentityassociations`)
          .catch((): KubeList<PodIdentityAssociation> => ({ items: [] })),
        kube.get<KubeList<Namespace>>('/api/v1/namespaces'),
      ]);
      const inUse: IdentityInUse[] = [];
      // Listed objects: the API server always sets their namespace and name, and a PodIdentityAssociation's
      // serviceAccount and roleARN (required by its CRD).
      for (const sa of sas.items ?? []) {
        const role = sa.metadata?.annotations?.[ROLE_ANNOTATION];
        const { namespace = '', name = '' } = sa.metadata ?? {};
        if (role)
          inUse.push({
            object: `serviceaccount ${namespace}/${name}`,
            namespace,
            serviceAccount: name,
            roleARN: role,
          });
      }
      for (const a of assocs.items ?? []) {
        const { namespace = '', name = '' } = a.metadata ?? {};
        inUse.push({
          object: `podidentityassociation ${namespace}/${name}`,
          namespace,
          serviceAccount: a.spec?.serviceAccount ?? '',
          roleARN: a.spec?.roleARN ?? '',
          targetRoleARN: a.spec?.targetRoleARN,
        });
      }
      const labels = new Map<string, Record<string, string>>(
        (nss.items ?? []).map((n) => [n.metadata?.name ?? '', n.metadata?.labels ?? {}]),
      );
      return policyFindings([...policies, ...extra], inUse, labels, true);
    },
  });
}

// ---- Identities: pure checks over one view of the cluster ----

/** What the identity checks read, listed once per `lanyard doctor` run. */
export interface IdentityView {
  pods: Pod[];
  /** Lanyard PodIdentityAssociations. */
  associations: PodIdentityAssociation[];
  /** The verifier's latest Warning per Pod UID (only Pods at the gate are looked up). */
  gateNotes: Map<string, GateNote>;
  /** Each pending or running Pod's identity state, as the running-Pod reconciler decides it (docs/identities.md). */
  identities: IdentityRow[];
  nowMs: number;
}

export type IdentityCheck = (v: IdentityView) => DoctorFinding[];

/** A Pod held longer than this without `failed` is reported as a warning (release takes about a second, p95). */
export const GATED_WARN_AFTER_MS = 60_000;
const ENDED = new Set(['Succeeded', 'Failed']);

const podObject = (p: Pod) => `pod ${p.metadata?.namespace}/${p.metadata?.name}`;
const isGated = (p: Pod) => (p?.spec?.schedulingGates ?? []).some((g) => g?.name === GATE_NAME);

/** Pods at the `lanyard.dev/identity` gate: past the verify deadline (`failed`) an error, else a warning after a minute. */
export function gatedPodFindings(v: IdentityView): DoctorFinding[] {
  const out: DoctorFinding[] = [];
  for (const p of v.pods) {
    if (!isGated(p) || p.metadata?.deletionTimestamp) continue;
    const failed = p.metadata?.annotations?.[VERIFICATION_ANNOTATION] === 'failed';
    const heldMs = v.nowMs - Date.parse(p.metadata?.creationTimestamp ?? '');
    if (!failed && !(heldMs >= GATED_WARN_AFTER_MS)) continue;
    const note = v.gateNotes.get(p.metadata?.uid ?? '');
    const held = Number.isFinite(heldMs) ? humanDuration(heldMs) : 'an unknown time';
    const last = note
      ? `last attempt: ${note.note}`
      : 'no attempt recorded: check that lanyard controller runs and holds its Lease';
    out.push({
      level: failed ? 'error' : 'warning',
      object: podObject(p),
      text: failed
        ? `held at the ${GATE_NAME} gate for ${held}: identity not verified within the deadline (still retrying); ${last}`
        : `held at the ${GATE_NAME} gate for ${held}; ${last}`,
      fix:
        (note && gateFixHint(note.note)) ??
        `kubectl describe pod ${p.metadata?.name} -n ${p.metadata?.namespace} (docs/verified-start.md, "Troubleshooting from the Event text")`,
    });
  }
  return out;
}

const condition = (o: PodIdentityAssociation, type: string): Condition | undefined =>
  (o?.status?.conditions ?? []).find((c) => c?.type === type);

const ASSOCIATION_FIXES: Record<string, string> = {
  PolicyDenied:
    'change the IdentityPolicy or the role; lanyard doctor --policy-preview <file> shows the effect of a policy',
  RoleNotFound: 'create the IAM role (or correct spec.roleARN); the association retries at its next resync',
  AccessDenied: "grant the controller's AWS role the EKS association calls (docs/associations.md)",
  ClusterNotFound: "correct spec.clusterName or the controller's --cluster-name",
  Duplicate: 'delete one of the associations for this ServiceAccount',
  RoleMismatch: 'the exchange returned another role: check spec.roleARN and spec.targetRoleARN against EKS',
  ExchangeFailed:
    "check the role's trust policy: principal pods.eks.amazonaws.com with sts:AssumeRole and sts:TagSession",
  VerificationTimeout: "check the role's trust policy and that eks-auth sees the association",
};

/** PodIdentityAssociations whose `Ready` is not True: False is an error naming the failing condition, else a warning. */
export function associationFindings(v: IdentityView): DoctorFinding[] {
  const out: DoctorFinding[] = [];
  for (const a of v.associations) {
    if (a.metadata?.deletionTimestamp) continue;
    const ready = condition(a, 'Ready');
    if (ready?.status === 'True') continue;
    // The failing one of the two conditions Ready is made of (docs/associations.md#what-the-controller-does).
    const cause =
      [condition(a, 'Synced'), condition(a, 'Verified')].find((c) => c && c.status !== 'True') ?? ready;
    const why = cause
      ? `${cause.type}=${cause.status} ${cause.reason ?? ''}${cause.message ? `: ${cause.message}` : ''}`.trim()
      : 'no status yet';
    const object = `podidentityassociation ${a.metadata?.namespace}/${a.metadata?.name}`;
    // A failed exchange the verifier is still retrying (eks-auth and IAM take seconds to see a change) is no error yet.
    const settling =
      cause?.type === 'Verified' &&
      v.nowMs - Date.parse(cause.lastTransitionTime ?? '') < GATED_WARN_AFTER_MS;
    if (ready?.status === 'False' && !settling) {
      out.push({
        level: 'error',
        object,
        text: `not Ready: ${why}`,
        fix:
          (cause?.type === 'Verified' && gateFixHint(String(cause.message ?? ''))) ||
          ASSOCIATION_FIXES[cause?.reason ?? ''] ||
          `kubectl describe podidentityassociation ${a.metadata?.name} -n ${a.metadata?.namespace}`,
      });
    } else {
      out.push({ level: 'warning', object, text: `not Ready yet: ${why}` });
    }
  }
  return out;
}

const STATIC_KEYS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];

/** Where a static key comes from, without its value. */
function keySource(e: EnvVar): string {
  const ref = e?.valueFrom;
  if (ref?.secretKeyRef) return `from Secret "${ref.secretKeyRef.name}" key "${ref.secretKeyRef.key}"`;
  if (ref?.configMapKeyRef)
    return `from ConfigMap "${ref.configMapKeyRef.name}" key "${ref.configMapKeyRef.key}"`;
  if (ref) return 'from a valueFrom reference';
  return 'a literal value';
}

/**
 * Pods whose containers set AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY in env (docs/security.md §4: static keys are
 * no identity obtained through the cluster). An error when the Pod also has an identity through the cluster, which
 * the SDK chain then never uses; else a warning. Values are never read into the text.
 */
export function staticKeyFindings(v: IdentityView): DoctorFinding[] {
  const out: DoctorFinding[] = [];
  const creds = credentialOptions();
  for (const p of v.pods) {
    if (ENDED.has(p.status?.phase ?? '') || p.metadata?.deletionTimestamp) continue;
    const found: string[] = [];
    for (const l of CONTAINER_LISTS) {
      // Read as the SDKs would meet them: a list or an env that is not an array holds nothing.
      const list: unknown = p.spec?.[l];
      for (const c of Array.isArray(list) ? (list as Array<Container | null>) : []) {
        const env: unknown = c?.env;
        const keys = (Array.isArray(env) ? (env as Array<EnvVar | null>) : []).filter(
          (e): e is EnvVar => !!e && STATIC_KEYS.includes(e.name),
        );
        if (keys.length)
          found.push(
            `container "${c?.name}" sets ${keys.map((e) => `${e.name} (${keySource(e)})`).join(' and ')}`,
          );
      }
    }
    if (!found.length) continue;
    const identities = podCredentials(p, creds).identities;
    const sa = p.spec?.serviceAccountName ?? 'default';
    const shadowed = identities.length > 0;
    out.push({
      level: shadowed ? 'error' : 'warning',
      object: podObject(p),
      text:
        `${found.join('; ')}: static AWS keys, which are no identity obtained through the cluster` +
        (shadowed
          ? `; the SDK credential chain uses them before the Pod's ${identities[0]!.mode} identity, which is never used`
          : ''),
      fix: shadowed
        ? "remove the static keys from the Pod; its ServiceAccount's identity then applies"
        : `remove the static keys and give ServiceAccount "${p.metadata?.namespace}/${sa}" a role (eks.amazonaws.com/role-arn annotation or a PodIdentityAssociation)`,
    });
  }
  return out;
}

/**
 * Pods the running-Pod reconciler reports (docs/identities.md): `missing`, `stale` and `denied` run with another
 * identity than the one declared or allowed now, an error; `unverified` (opted out, or admitted with the gate off) a
 * warning. Its message says why and what to do.
 */
export function reconcilerFindings(v: IdentityView): DoctorFinding[] {
  // A Pod at the gate is reported by gatedPodFindings, with the verifier's reason.
  const held = new Set(v.pods.filter(isGated).map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`));
  return v.identities
    .filter((r) => PROBLEM_STATES.has(r.state) && !held.has(`${r.namespace}/${r.pod}`))
    .map((r) => ({
      level: r.state === 'unverified' ? ('warning' as const) : ('error' as const),
      object: `pod ${r.namespace}/${r.pod}`,
      text: `identity ${r.state}${r.workload ? ` (${r.workload})` : ''}: ${r.message}`,
      ...(r.state === 'missing' || r.state === 'stale'
        ? {
            fix: r.workload
              ? `kubectl rollout restart ${r.workload} -n ${r.namespace}, or annotate it lanyard.dev/identity-repair=restart; lanyard get identities -n ${r.namespace} lists its Pods`
              : 'recreate the Pod',
          }
        : {}),
    }));
}

/** Every identity check, in output order. */
export const IDENTITY_CHECKS: readonly IdentityCheck[] = [
  gatedPodFindings,
  associationFindings,
  staticKeyFindings,
  reconcilerFindings,
];

async function listAll<T extends KubeObject>(
  kube: KubeClient,
  path: string,
  query: Record<string, string> = {},
): Promise<T[]> {
  const items: T[] = [];
  let cont: string | undefined;
  do {
    const page = await kube.get<KubeList<T>>(path, {
      ...query,
      limit: 500,
      ...(cont ? { continue: cont } : {}),
    });
    items.push(...(page.items ?? []));
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return items;
}

/** Reads the view: cluster-wide, or one project's namespace with `--project`. */
export async function readIdentityView(
  kube: KubeClient,
  namespace: string | undefined,
  nowMs: number,
): Promise<IdentityView> {
  const scope = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const [pods, associations] = await Promise.all([
    listAll<Pod>(kube, `/api/v1${scope}/pods`),
    listAll<PodIdentityAssociation>(kube, `${VI_API}${scope}/podidentityassociations`).catch(
      (e: unknown): PodIdentityAssociation[] => {
        if ((e as { status?: number }).status === 404) return [];
        throw e;
      },
    ),
  ]);
  // The verifier's Events only where a Pod is held, one list per namespace.
  const held = [...new Set(pods.filter(isGated).map((p) => p.metadata?.namespace ?? ''))];
  const events = (
    await Promise.all(
      held.map((ns) =>
        listAll<AnyEvent & KubeObject>(kube, `/api/v1/namespaces/${encodeURIComponent(ns)}/events`, {
          fieldSelector: VERIFIER_EVENTS_SELECTOR,
        }),
      ),
    )
  ).flat();
  // The reconciler's decision from one round of lists (what `lanyard get identities` prints).
  const snapshot = await identitySnapshot(
    { list: (path, query) => listAll(kube, path, query), get: (path) => kube.get(path) },
    { namespace, configMapNamespace: 'lanyard-system', nowMs },
  );
  return {
    pods,
    associations,
    gateNotes: latestGateNotes(events.map(gateNoteOf)),
    identities: snapshot.rows,
    nowMs,
  };
}

export function registerIdentityDoctor(cli: Cli): void {
  cli.doctorCheck({
    name: 'identities',
    async run(ctx: DoctorContext) {
      const namespace = ctx.flags.project ?? ctx.settings().defaultProject;
      const view = await readIdentityView(await ctx.kube(), namespace, ctx.now());
      return IDENTITY_CHECKS.flatMap((check) => check(view));
    },
  });
}
