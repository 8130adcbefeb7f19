// deploy/helm/lanyard/values.schema.json, checked by the real helm binary: wrong values fail before anything renders,
// naming the value and the rule; the defaults and documented settings pass.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { helmBinary } from '../../../src/sandbox/binaries.ts';
import { PACKAGE_ROOT } from '../../../src/sandbox/paths.ts';

const chart = `${PACKAGE_ROOT}/deploy/helm/lanyard`;

function template(values: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(
    helmBinary(),
    [
      'template',
      'lanyard',
      chart,
      '--namespace',
      'lanyard-system',
      '--kube-version',
      '1.36.3',
      ...values.flatMap((v) => ['--set', v]),
    ],
    {
      encoding: 'utf8',
    },
  );
  return { status: r.status, stderr: r.stderr };
}

describe('the chart values schema', () => {
  it.each([
    [['webhook.replicas=abc'], /webhook\.replicas|\/webhook\/replicas/, /integer/],
    [['webhook.failurePolicy=Sometimes'], /failurePolicy/, /Fail|Ignore|must be one of/],
    [['controller.logLevel=verbose'], /logLevel/, /error|must be one of/],
    [['controller.associations.resync=10 minutes'], /resync/, /pattern|does not match/],
    [['webhook.port=70000'], /port/, /65535|maximum/],
    [['webhook.kubeSystem=maybe'], /kubeSystem/, /ignore|must be one of/],
  ])('refuses %j, naming the value and the rule', (values, field, rule) => {
    const r = template(values);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/schema/i);
    expect(r.stderr).toMatch(field);
    expect(r.stderr).toMatch(rule);
  });

  it.each([
    [[]],
    [['webhook.failurePolicy=Ignore', 'webhook.replicas=3', 'webhook.kubeSystem=exclude']],
    [
      [
        'clusterName=prod-eu',
        'aws.region=eu-west-1',
        'controller.associations.resync=1h30m',
        'controller.logLevel=debug',
      ],
    ],
    [['aws.region=us-gov-west-1', 'aws.endpointUrl=http://127.0.0.1:4566']],
  ])('accepts %j', (values) => {
    const r = template(values);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
