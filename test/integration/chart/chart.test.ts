// The Helm chart renders with helm and every object it renders is accepted by the real API server
// (server-side dry-run: schema, CEL and RBAC validation without changing the cluster).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { objectPath } from '../../../src/kube/apply.ts';
import { helmBinary } from '../../../src/sandbox/binaries.ts';
import { PACKAGE_ROOT } from '../../../src/sandbox/paths.ts';
import { adminClient } from '../../harness/context.ts';
import { parseControllerFlags } from '../../../src/config/controller.ts';
import { parseWebhookFlags } from '../../../src/config/webhook.ts';

const chart = `${PACKAGE_ROOT}/deploy/helm/lanyard`;

function render(values: string[] = []): Json[] {
  const out = execFileSync(
    helmBinary(),
    [
      'template',
      'lanyard',
      chart,
      '--namespace',
      'lanyard-system',
      '--include-crds',
      '--kube-version',
      '1.36.3',
      ...values.flatMap((v) => ['--set', v]),
    ],
    { encoding: 'utf8' },
  );
  return parseAllDocuments(out)
    .map((d) => d.toJSON())
    .filter((o) => o?.kind);
}

let admin: KubeClient;
beforeAll(async () => {
  admin = await adminClient();
});
afterAll(() => admin.close());

describe('helm chart', () => {
  it('is found by the test (helm was built by the set-up scripts)', () => {
    expect(fs.existsSync(helmBinary())).toBe(true);
  });

  it.each([
    ['defaults', []],
    [
      'webhook only, failurePolicy Ignore',
      ['controller.enabled=false', 'promotions.enabled=false', 'webhook.failurePolicy=Ignore'],
    ],
  ])('renders (%s) objects that the API server accepts on a server-side dry run', async (_name, values) => {
    const objects = render(values as string[]);
    expect(objects.length).toBeGreaterThan(0);
    // Namespaces the chart writes into must exist for a dry run of their contents; they are empty.
    const namespaces = new Set(objects.map((o) => o.metadata?.namespace).filter(Boolean));
    for (const o of objects.filter((x) => x.kind === 'Namespace')) namespaces.add(o.metadata.name);
    for (const ns of namespaces) {
      await admin.create('/api/v1/namespaces', { metadata: { name: ns } }).catch(() => {});
    }
    const failures: string[] = [];
    for (const obj of objects) {
      if (obj.kind === 'Namespace') continue;
      if (obj.kind === 'CustomResourceDefinition') {
        // CRDs are installed by the harness already; a dry-run update proves the chart's copy is valid.
        const cur = await admin.get(
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${obj.metadata.name}`,
        );
        await admin
          .request({
            method: 'PUT',
            path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${obj.metadata.name}`,
            query: { dryRun: 'All' },
            body: { ...obj, metadata: { ...obj.metadata, resourceVersion: cur.metadata.resourceVersion } },
          })
          .catch((e) => failures.push(`${obj.kind}/${obj.metadata.name}: ${e.message}`));
        continue;
      }
      const p = await objectPath(admin, obj, 'lanyard-system').catch((e) => {
        failures.push(`${obj.kind}/${obj.metadata?.name}: ${e.message}`);
        return undefined;
      });
      if (!p) continue;
      const collection = p.slice(0, p.lastIndexOf('/'));
      await admin.create(collection, obj, { dryRun: 'All', fieldValidation: 'Strict' }).catch((e) => {
        if (e.status !== 409) failures.push(`${obj.kind}/${obj.metadata.name}: ${e.message}`);
      });
    }
    expect(failures).toEqual([]);
  });

  it("lets the promotion controller read and watch both step kinds, PromotionStep and Kargo's CustomPromotionStep (docs/adr/0605)", () => {
    const objects = render();
    const role = objects.find((o) => o.kind === 'ClusterRole' && o.metadata.name === 'lanyard-promotions');
    const can = (resource: string, verb: string) =>
      (role?.rules as Json[]).some(
        (r) =>
          r.apiGroups.includes('lanyard.dev') && r.resources.includes(resource) && r.verbs.includes(verb),
      );
    for (const resource of ['promotionsteps', 'custompromotionsteps'])
      for (const verb of ['get', 'list', 'watch'])
        expect(can(resource, verb), `${verb} ${resource}`).toBe(true);
    // The CRD ships in the chart, with PromotionStep's schema.
    const crd = (name: string) =>
      objects.find((o) => o.kind === 'CustomResourceDefinition' && o.metadata.name === name);
    const custom = crd('custompromotionsteps.lanyard.dev');
    expect(custom?.spec.names.kind).toBe('CustomPromotionStep');
    expect(custom?.spec.versions[0].schema.openAPIV3Schema.properties.spec).toEqual(
      crd('promotionsteps.lanyard.dev')?.spec.versions[0].schema.openAPIV3Schema.properties.spec,
    );
  });

  it('passes the Deployments only arguments that the lanyard commands accept', () => {
    const deployments = render(['clusterName=prod-eu', 'aws.region=eu-west-1']).filter(
      (o) => o.kind === 'Deployment',
    );
    const commands = deployments.map((d) => d.spec.template.spec.containers[0].args[0]).sort();
    expect(commands).toEqual(['controller', 'webhook']);
    for (const d of deployments) {
      const [command, ...args] = d.spec.template.spec.containers[0].args as string[];
      if (command === 'controller') {
        const { config } = parseControllerFlags(args);
        expect(config.clusterName).toBe('prod-eu');
        expect(config.leaderElect).toBe(true);
      } else {
        const config = parseWebhookFlags(args, { env: { POD_NAMESPACE: 'lanyard-system' } });
        expect(config.tlsMode).toBe('self-managed');
        expect(config.port).toBe(9443);
      }
    }
  });
});
