// `lanyard doctor` checks for IdentityPolicy (verification.md §5): no policy at all (everything allowed), policies
// ignored for an invalid pattern, and with `--policy-preview [file]` the identities in use that the cluster's
// policies (plus those in the file) would deny.
import fs from 'node:fs';
import type { Command } from 'commander';
import type { Cli, DoctorFinding } from '../cli/framework.ts';
import { CliError, EXIT } from '../cli/exit.ts';
import type { Json } from '../kube/client.ts';
import { readManifests } from '../kube/apply.ts';
import { PolicyCompiler, decidePolicy } from './policy.ts';
import { VI_API } from './verified-identity.ts';

const ROLE_ANNOTATION = 'eks.amazonaws.com/role-arn';

export interface IdentityInUse {
  object: string;
  namespace: string;
  serviceAccount: string;
  roleARN: string;
  targetRoleARN?: string;
}

/** Pure: the findings for a set of policies and the identities in use. */
export function policyFindings(policyObjects: Json[], inUse: IdentityInUse[], labels: Map<string, Record<string, string>>, preview: boolean): DoctorFinding[] {
  const set = new PolicyCompiler().compileAll(policyObjects);
  const out: DoctorFinding[] = [];
  if (!set.present) {
    out.push({ level: 'warning', object: 'identitypolicies', text: 'no IdentityPolicy exists: any namespace may use any role',
      fix: 'create an IdentityPolicy (the first one turns on default-deny); check its effect first with: lanyard doctor --policy-preview <file>' });
  }
  for (const p of set.policies) {
    if (!p.accepted) out.push({ level: 'error', object: `identitypolicy ${p.name}`, text: `ignored: ${p.invalidMessage}`, fix: 'correct the entry; until then the policy allows nothing' });
  }
  if (preview) {
    const previewSet = set.present ? set : { present: true, policies: [] };
    for (const id of inUse) {
      const d = decidePolicy(previewSet, { namespace: id.namespace, namespaceLabels: labels.get(id.namespace), serviceAccount: id.serviceAccount,
        roleARN: id.roleARN, targetRoleARN: id.targetRoleARN });
      if (!d.allowed) out.push({ level: 'warning', object: id.object, text: `would be denied: ${d.message.replace(/^lanyard: /, '')}` });
    }
  }
  return out;
}

export function registerPolicyDoctor(cli: Cli): void {
  const doctor = cli.program.commands.find((c: Command) => c.name() === 'doctor');
  doctor?.option('--policy-preview [file]', 'list identities in use that IdentityPolicies (the cluster\'s plus those in the file) would deny');
  cli.doctorCheck({
    name: 'identitypolicies',
    async run(ctx) {
      const previewOpt = doctor?.opts().policyPreview as string | boolean | undefined;
      let extra: Json[] = [];
      if (typeof previewOpt === 'string') {
        if (!fs.existsSync(previewOpt)) throw new CliError(`--policy-preview: file "${previewOpt}" not found`, EXIT.usage);
        extra = readManifests(previewOpt).filter((o) => o?.kind === 'IdentityPolicy')
          .map((o, i) => ({ ...o, metadata: { ...o.metadata, uid: o.metadata?.uid ?? `preview-${i}`, generation: 1 } }));
      }
      const kube = await ctx.kube();
      const policies: Json[] = (await kube.get(`${VI_API}/identitypolicies`)).items ?? [];
      if (!previewOpt) return policyFindings(policies, [], new Map(), false);
      const [sas, assocs, nss] = await Promise.all([
        kube.get('/api/v1/serviceaccounts'),
        kube.get(`${VI_API}/podidentityassociations`).catch(() => ({ items: [] })),
        kube.get('/api/v1/namespaces'),
      ]);
      const inUse: IdentityInUse[] = [];
      for (const sa of sas.items ?? []) {
        const role = sa.metadata?.annotations?.[ROLE_ANNOTATION];
        if (role) inUse.push({ object: `serviceaccount ${sa.metadata.namespace}/${sa.metadata.name}`, namespace: sa.metadata.namespace, serviceAccount: sa.metadata.name, roleARN: role });
      }
      for (const a of assocs.items ?? []) {
        inUse.push({ object: `podidentityassociation ${a.metadata.namespace}/${a.metadata.name}`, namespace: a.metadata.namespace,
          serviceAccount: a.spec?.serviceAccount, roleARN: a.spec?.roleARN, targetRoleARN: a.spec?.targetRoleARN });
      }
      const labels = new Map<string, Record<string, string>>((nss.items ?? []).map((n: Json) => [n.metadata.name, n.metadata.labels ?? {}]));
      return policyFindings([...policies, ...extra], inUse, labels, true);
    },
  });
}
