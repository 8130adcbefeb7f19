import { describe, expect, it } from 'vitest';
import type { ResolvedIdentity } from './sources.ts';
import { identityRoleArnProblem } from './role-arn.ts';
import { truncate } from '../runtime/text.ts';

const base = {
  namespace: 'ns',
  serviceAccount: 'sa',
  mode: 'WebIdentity',
  audience: 'sts.amazonaws.com',
} as const;

describe('role ARNs from identity sources', () => {
  it('accepts valid roles and identities without one', () => {
    expect(
      identityRoleArnProblem(
        {
          ...base,
          source: 'service_account',
          roleARN: 'arn:aws:iam::111122223333:role/app',
          fingerprint: {
            source: 'service_account',
            saUid: 'u',
            roleARN: '',
            audience: '',
            regionalSts: false,
          },
        },
        'eks.amazonaws.com',
      ),
    ).toBeUndefined();
    expect(
      identityRoleArnProblem(
        {
          ...base,
          mode: 'ContainerCredentials',
          source: 'identities_file',
          fingerprint: { source: 'identities_file' },
        },
        'x',
      ),
    ).toBeUndefined();
  });

  it('names the ServiceAccount annotation, echoes the value bounded and states the rule', () => {
    const long = `arn:aws:iam::111122223333:role/${'n'.repeat(100_000)}`;
    const id: ResolvedIdentity = {
      ...base,
      source: 'service_account',
      roleARN: long,
      fingerprint: { source: 'service_account', saUid: 'u', roleARN: long, audience: '', regionalSts: false },
    };
    const msg = identityRoleArnProblem(id, 'eks.amazonaws.com')!;
    expect(msg).toContain(
      'lanyard: ServiceAccount "ns/sa" annotation eks.amazonaws.com/role-arn "arn:aws:iam::111122223333:role/nnn',
    );
    expect(msg).toContain('…[99775 more characters]"');
    expect(msg).toContain(': is 100031 characters; an IAM role ARN has at most');
    expect(msg.length).toBeLessThan(600);
  });

  it('names the kOps ConfigMap entry and the association field', () => {
    expect(
      identityRoleArnProblem(
        {
          ...base,
          source: 'configmap',
          roleARN: 'r1',
          fingerprint: { source: 'configmap', key: 'ns/sa', entryJson: '{}' },
        },
        'p',
      ),
    ).toBe(
      'lanyard: kOps ConfigMap entry "ns/sa" RoleARN "r1": must be an IAM role ARN arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME with a 12-digit ACCOUNT; NAME is 1-64 of letters, digits and +=,.@_-',
    );
    expect(
      identityRoleArnProblem(
        {
          ...base,
          mode: 'ContainerCredentials',
          source: 'association',
          roleARN: 'arn:aws:iam::111122223333:role/ok',
          targetRoleARN: 'bad',
          fingerprint: { source: 'association', uid: 'u', disableSessionTags: false },
        },
        'p',
      ),
    ).toMatch(/^lanyard: PodIdentityAssociation of ServiceAccount "ns\/sa" spec.targetRoleARN "bad": /);
  });

  it('truncates only long text', () => {
    expect(truncate('short')).toBe('short');
    expect(truncate('x'.repeat(300))).toBe(`${'x'.repeat(256)}…[44 more characters]`);
  });
});
