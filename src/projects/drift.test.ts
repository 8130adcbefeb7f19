import { describe, expect, it } from 'vitest';
import { builtInDrift, driftMessage } from './drift.ts';
import { BUILTIN_ROLES } from './builtin-roles.ts';
import { roleTrio, type RoleTrio } from './objects.ts';
import type { ObjectMeta } from '../core/kube-object.ts';

function project() {
  // Partial: a test removes one object of a trio to show it reported missing.
  const objs = new Map<string, Partial<RoleTrio>>();
  for (const b of BUILTIN_ROLES)
    objs.set(b.name, roleTrio({ project: 'shop', name: b.name, rules: structuredClone(b.rules) }));
  return {
    objs,
    lookup: {
      role: (n: string) => objs.get(n)?.role,
      serviceAccount: (n: string) => objs.get(n)?.serviceAccount,
      roleBinding: (n: string) => objs.get(n)?.roleBinding,
    },
  };
}

describe('builtInDrift', () => {
  it('finds nothing in a fresh project, whatever the rule order', () => {
    const p = project();
    p.objs.get('lanyard-admin')!.role!.rules.reverse();
    p.objs.get('lanyard-admin')!.role!.rules[0]!.verbs.reverse();
    expect(builtInDrift('shop', p.lookup)).toEqual([]);
  });
  it('reports missing, unannotated, altered and rebound trios', () => {
    const p = project();
    p.objs.get('lanyard-admin')!.role!.rules[0]!.verbs.push('escalate');
    delete p.objs.get('lanyard-viewer')!.serviceAccount;
    p.objs.get('lanyard-promoter')!.roleBinding!.subjects = [];
    expect(builtInDrift('shop', p.lookup)).toEqual([
      { role: 'lanyard-admin', problem: 'role "lanyard-admin" rules differ from the built-in rules' },
      { role: 'lanyard-viewer', problem: 'serviceaccount "lanyard-viewer" missing' },
      {
        role: 'lanyard-promoter',
        problem: 'rolebinding "lanyard-promoter" does not list serviceaccount "lanyard-promoter" first',
      },
    ]);
    const q = project();
    delete (q.objs.get('lanyard-viewer')!.role!.metadata as ObjectMeta).annotations;
    q.objs.get('lanyard-admin')!.roleBinding!.roleRef.name = 'cluster-admin';
    const d = builtInDrift('shop', q.lookup);
    expect(d.map((x) => x.problem)).toEqual([
      'rolebinding "lanyard-admin" does not reference role "lanyard-admin"',
      'role "lanyard-viewer" not annotated rbac.lanyard.dev/managed: "true"',
    ]);
    expect(driftMessage('shop', d)).toMatch(/run: lanyard create project shop --adopt$/);
  });
});
