import { describe, expect, it } from 'vitest';
import {
  addSubjects,
  removeSubjects,
  joinRoles,
  notManagedMessage,
  roleView,
  grantedSubjects,
  rolesGranting,
} from './roles.ts';
import type { ObjectMeta } from '../core/kube-object.ts';
import { roleTrio, serviceAccountSubject, userSubject, groupSubject } from './objects.ts';

const trio = (name: string, extra: ReturnType<typeof userSubject>[] = []) => {
  const t = roleTrio({ project: 'shop', name, rules: [], extraSubjects: extra });
  for (const o of [t.role, t.serviceAccount])
    (o.metadata as { creationTimestamp?: string }).creationTimestamp = '2026-08-20T10:00:00Z';
  return t;
};

describe('subjects', () => {
  const own = serviceAccountSubject('shop', 'developer');
  const bot = serviceAccountSubject('shop', 'ci-bot');
  const alice = userSubject('alice');
  it('grant appends new subjects in order, keeps existing order, skips duplicates', () => {
    expect(addSubjects([own, alice], [bot, alice, groupSubject('devs')])).toEqual({
      subjects: [own, alice, bot, groupSubject('devs')],
      changed: true,
    });
    expect(addSubjects([own, bot], [bot])).toEqual({ subjects: [own, bot], changed: false });
  });
  it('treats a user subject without apiGroup as the same user', () => {
    expect(addSubjects([{ kind: 'User', name: 'alice' }], [alice]).changed).toBe(false);
  });
  it('distinguishes kinds and namespaces', () => {
    expect(addSubjects([userSubject('x')], [groupSubject('x')]).changed).toBe(true);
    expect(addSubjects([serviceAccountSubject('other', 'ci-bot')], [bot]).changed).toBe(true);
  });
  it('revoke removes members and ignores non-members', () => {
    expect(removeSubjects([own, bot, alice], [bot, userSubject('nobody')])).toEqual({
      subjects: [own, alice],
      changed: true,
    });
    expect(removeSubjects([own], [alice])).toEqual({ subjects: [own], changed: false });
  });
});

describe('roles as trios', () => {
  it('joins by name, sorted, and tells why a role is not managed', () => {
    const a = trio('b-role');
    const b = trio('a-role');
    delete (b.roleBinding.metadata as ObjectMeta).annotations;
    const joined = joinRoles(
      [a.role, b.role],
      [a.serviceAccount, b.serviceAccount],
      [a.roleBinding, b.roleBinding],
    );
    expect(joined.map((j) => j.name)).toEqual(['a-role', 'b-role']);
    expect(notManagedMessage('shop', joined[0]!)).toBe(
      'role "a-role" in project "shop" is not managed by Lanyard (rolebinding "a-role" has no rbac.lanyard.dev/managed: "true" annotation); change it where it is declared, for example in Git',
    );
    expect(notManagedMessage('shop', joined[1]!)).toBeUndefined();
    expect(notManagedMessage('shop', { name: 'x', role: a.role, roleBinding: a.roleBinding })).toMatch(
      /serviceaccount "x" does not exist/,
    );
  });
  it('builds the view object without the implied own account', () => {
    const t = trio('developer', [userSubject('alice@example.com')]);
    t.roleBinding.subjects.splice(1, 0, serviceAccountSubject('shop', 'ci-bot'));
    const j = {
      name: 'developer',
      role: t.role,
      serviceAccount: t.serviceAccount,
      roleBinding: t.roleBinding,
    };
    expect(grantedSubjects('shop', j)).toHaveLength(2);
    expect(roleView('shop', j)).toEqual({
      apiVersion: 'rbac.lanyard.dev/v1alpha1',
      kind: 'Role',
      metadata: { name: 'developer', namespace: 'shop', creationTimestamp: '2026-08-20T10:00:00Z' },
      managed: true,
      builtIn: false,
      rules: [],
      subjects: [
        { kind: 'ServiceAccount', name: 'ci-bot', namespace: 'shop' },
        { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'alice@example.com' },
      ],
    });
  });
  it('finds the bindings that list an account', () => {
    const a = trio('deployer');
    a.roleBinding.subjects.push(serviceAccountSubject('shop', 'ci-bot'));
    const b = trio('viewer');
    expect(
      rolesGranting('shop', 'ci-bot', [a.roleBinding, b.roleBinding]).map((x) => x.metadata?.name),
    ).toEqual(['deployer']);
  });
});
