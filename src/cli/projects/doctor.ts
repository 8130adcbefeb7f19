// Doctor check: built-in roles drifted from docs/projects-and-tokens.md#1-create-a-project (the same finding the housekeeping reconciler reports).
import type { ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../../core/kube-object.ts';
import type { Role, RoleBinding } from 'kubernetes-types/rbac/v1.js';
import type { Cli, DoctorFinding } from '../framework.ts';
import { builtInDrift } from '../../projects/drift.ts';
import { paths, listAll } from './common.ts';

export function registerProjectDoctorChecks(cli: Cli): void {
  cli.doctorCheck({
    name: 'built-in roles',
    async run(ctx) {
      const kube = await ctx.kube();
      const findings: DoctorFinding[] = [];
      for (const project of await ctx.projects()) {
        const [roles, sas, rbs] = await Promise.all([
          listAll<Role>(kube, paths.role(project)),
          listAll<ServiceAccount>(kube, paths.serviceAccount(project)),
          listAll<RoleBinding>(kube, paths.roleBinding(project)),
        ]);
        const find =
          <T extends KubeObject>(items: T[]) =>
          (name: string) =>
            items.find((i) => i.metadata?.name === name);
        for (const d of builtInDrift(project, {
          role: find(roles),
          serviceAccount: find(sas),
          roleBinding: find(rbs),
        })) {
          findings.push({
            level: 'error',
            object: `project ${project}`,
            text: `built-in role "${d.role}" drifted: ${d.problem}`,
            fix: `lanyard create project ${project} --adopt`,
          });
        }
      }
      return findings;
    },
  });
}
