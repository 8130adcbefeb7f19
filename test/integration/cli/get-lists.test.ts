// `lanyard get` lists every noun the same way (docs/cli.md, output): each name printed once however often it is
// given, every page of 500 read from the API server, and -o yaml items printable on their own (apiVersion and kind).
// Regression tests for stages and promotions, which once listed and picked names on a path of their own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { KubeClient } from '../../../src/kube/client.ts';
import { adminClient, deleteNamespaces, lanyard, newProject } from '../projects/helpers.ts';
import { createStage, G, promote } from '../../fixtures/promotion-env.ts';

let admin: KubeClient;
let project: string;
let promotion: string;
beforeAll(async () => {
  admin = await adminClient();
  project = await newProject('lists');
  const cli = (argv: string[]) => lanyard('admin', [...argv, '-p', project]);
  for (const name of ['a', 'b']) {
    await createStage(admin, project, name, {
      promotionTemplate: { spec: { steps: [{ as: 'one', uses: 'noop' }] } },
    });
    expect((await cli(['create', 'role', name, '--rule', 'stages:get'])).exitCode).toBe(0);
    expect((await cli(['create', 'sa', `bot-${name}`])).exitCode).toBe(0);
  }
  promotion = (await promote(admin, project, 'a')).metadata.name;
});
afterAll(async () => deleteNamespaces(admin, [project]));

const get = (argv: string[]) => lanyard('admin', ['get', ...argv, '-p', project]);

describe('lanyard get: one list and print path for every noun', () => {
  it.each([
    ['stage', 'a', 'stage/a'],
    ['role', 'a', 'role/a'],
    ['serviceaccount', 'bot-a', 'serviceaccount/bot-a'],
  ])('get %s %s twice prints %s once', async (noun, name, printed) => {
    const r = await get([noun, name, name, '-o', 'name']);
    expect(r).toMatchObject({ exitCode: 0, stdout: `${printed}\n` });
  });

  it('prints a promotion named twice once, and reports a missing name once', async () => {
    const r = await get(['promotion', promotion, promotion, 'nope', 'nope', '-o', 'name']);
    expect(r.stdout.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`/${promotion}$`))]);
    expect(r.stderr.match(/promotion "nope" not found/g)).toHaveLength(1);
    expect(r.exitCode).toBe(3);
  });

  it('get stages and get promotions read pages of 500: 501 of each are all printed, in two requests each', async () => {
    const many = await newProject('pages');
    try {
      const names = Array.from({ length: 501 }, (_, i) => `s${String(i).padStart(3, '0')}`);
      for (let i = 0; i < names.length; i += 25) {
        await Promise.all(
          names.slice(i, i + 25).map(async (n) => {
            await createStage(admin, many, n, {
              promotionTemplate: { spec: { steps: [{ as: 'one', uses: 'noop' }] } },
            });
            await promote(admin, many, n);
          }),
        );
      }
      const requests: string[] = [];
      const io = {
        onRequest: (e: { method: string; path: string }) => void requests.push(`${e.method} ${e.path}`),
      };
      const stages = await lanyard('admin', ['get', 'stages', '-p', many, '-o', 'name'], { io });
      expect(stages.exitCode).toBe(0);
      expect(stages.stdout.trim().split('\n')).toEqual(names.map((n) => `stage/${n}`));
      const promotions = await lanyard('admin', ['get', 'promotions', '-p', many, '-o', 'name'], { io });
      expect(promotions.exitCode).toBe(0);
      expect(new Set(promotions.stdout.trim().split('\n')).size).toBe(501);
      // Two pages each: 500, then the rest through the continue token.
      expect(requests.filter((r) => r === `GET ${G}/namespaces/${many}/stages`)).toHaveLength(2);
      expect(requests.filter((r) => r === `GET ${G}/namespaces/${many}/promotions`)).toHaveLength(2);
    } finally {
      await deleteNamespaces(admin, [many]);
    }
  });

  it.each([
    ['stages', 'Stage', ['a', 'b']],
    ['promotions', 'Promotion', undefined],
  ])('get %s -o yaml prints a List whose items carry apiVersion and kind', async (noun, kind, names) => {
    const r = await get([noun, '-o', 'yaml']);
    expect(r.exitCode).toBe(0);
    const list = parse(r.stdout);
    expect(list).toMatchObject({ apiVersion: 'v1', kind: 'List' });
    expect(list.items.length).toBeGreaterThan(0);
    for (const item of list.items) expect(item).toMatchObject({ apiVersion: 'lanyard.dev/v1alpha1', kind });
    if (names) expect(list.items.map((i: { metadata: { name: string } }) => i.metadata.name)).toEqual(names);
  });

  it('get stage a -o json prints the Stage alone, with apiVersion and kind', async () => {
    const r = await get(['stage', 'a', '-o', 'json']);
    expect(JSON.parse(r.stdout)).toMatchObject({
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'Stage',
      metadata: { name: 'a' },
    });
    expect((await admin.get(`${G}/namespaces/${project}/stages/a`)).metadata.name).toBe('a');
  });
});
