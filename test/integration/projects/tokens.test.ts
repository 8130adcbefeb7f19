// docs/projects-and-tokens.md scenarios 2 (the token authenticates and is scoped; run as a real subprocess, as a user would) and
// 6 (token not issued while the kube-controller-manager is stopped).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubeClient, type KubeClient } from '../../../src/kube/client.ts';
import {
  controlPlane,
  eventually,
  startControllerManager,
  stopControllerManager,
} from '../../harness/context.ts';
import {
  adminClient,
  deleteNamespaces,
  home,
  kubeconfigOf,
  lanyard,
  lanyardProcess,
  newProject,
} from './helpers.ts';

let admin: KubeClient;
const cleanup: string[] = [];
beforeAll(async () => {
  admin = await adminClient();
});
afterAll(async () => {
  await deleteNamespaces(admin, cleanup);
  admin.close();
});

describe('a project token (scenario 2)', () => {
  it('authenticates, is allowed exactly what its roles allow, and stops working once deleted', async () => {
    const shop = await newProject('tshop', ['alice']);
    const other = await newProject('tother');
    cleanup.push(shop, other);
    const alice = await kubeconfigOf('alice');
    const asAlice = (argv: string[]) => lanyard('alice', [...argv, '--project', shop]);
    expect((await asAlice(['create', 'sa', 'ci-bot'])).exitCode).toBe(0);
    expect(
      (
        await asAlice([
          'create',
          'role',
          'deployer',
          '--rule',
          'stages:get,list',
          '--rule',
          'promotions:create,get,list',
        ])
      ).exitCode,
    ).toBe(0);
    expect((await asAlice(['grant', '--role', 'deployer', '--service-account', 'ci-bot'])).stdout).toBe(
      'role/deployer updated\n',
    );

    // TOKEN=$(lanyard create sat ci-token --service-account ci-bot --project shop)
    // As a user runs it: a real process whose stdout is captured.
    const created = await lanyardProcess(
      ['create', 'sat', 'ci-token', '--service-account', 'ci-bot', '--project', shop],
      { KUBECONFIG: alice },
    );
    expect(created.exitCode).toBe(0);
    expect(created.stdout.split('\n')).toHaveLength(2);
    const token = created.stdout.trim();
    expect(token).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(created.stderr).toContain('This token is shown now and never again.');
    // Spinner only on a terminal: a pipe gets plain lines.
    expect(created.stderr).not.toContain('\r');

    const cp = controlPlane();
    const asToken = await createKubeClient({
      server: cp.server,
      token,
      caData: Buffer.from(cp.caPem).toString('base64'),
    });
    try {
      const stages = `/apis/lanyard.dev/v1alpha1/namespaces/${shop}/stages`;
      expect((await asToken.raw({ path: stages })).status).toBe(200);
      const promo = await asToken.raw({
        method: 'POST',
        path: `/apis/lanyard.dev/v1alpha1/namespaces/${shop}/promotions`,
        body: {
          apiVersion: 'lanyard.dev/v1alpha1',
          kind: 'Promotion',
          metadata: { name: 'p1' },
          spec: { stage: 'prod' },
        },
      });
      expect(promo.status).toBe(201);
      expect((await asToken.raw({ path: `/api/v1/namespaces/${shop}/secrets` })).status).toBe(403);
      expect(
        (await asToken.raw({ path: `/apis/lanyard.dev/v1alpha1/namespaces/${other}/stages` })).status,
      ).toBe(403);
      const stage = await asToken.raw({
        method: 'POST',
        path: stages,
        body: { apiVersion: 'lanyard.dev/v1alpha1', kind: 'Stage', metadata: { name: 's1' }, spec: {} },
      });
      expect(stage.status).toBe(403);
      const whoami = await asToken.raw({
        method: 'POST',
        path: '/apis/authentication.k8s.io/v1/selfsubjectreviews',
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      });
      expect(whoami.body.status.userInfo.username).toBe(`system:serviceaccount:${shop}:ci-bot`);

      // The lanyard CLI with LANYARD_SERVER + LANYARD_TOKEN, as a subprocess.
      const tokenEnv = {
        LANYARD_SERVER: cp.server,
        LANYARD_TOKEN: token,
        LANYARD_CERTIFICATE_AUTHORITY: cp.caFile,
      };
      const ok = await lanyardProcess(['get', 'stages', '--project', shop], tokenEnv);
      expect(ok.stderr).toBe(`No stages found in project "${shop}".\n`);
      expect(ok.exitCode).toBe(0);
      const denied = await lanyard('admin', ['get', 'stages', '--project', other], {
        env: { ...tokenEnv, KUBECONFIG: '' },
      });
      expect(denied.exitCode).toBe(4);
      expect(denied.stderr).toMatch(
        new RegExp(`^error: forbidden: you may not list stages in project "${other}"`),
      );

      // The kube-apiserver records the day a Secret-based token was last used; wide output shows it.
      await eventually(
        async () => {
          const wide = await asAlice(['get', 'sats', '-o', 'wide']);
          expect(wide.stdout).toMatch(
            /^NAME\s+SERVICE ACCOUNT\s+MANAGED\s+LAST USED\s+AGE\nci-token\s+ci-bot\s+true\s+\d{4}-\d{2}-\d{2}\s+\d+s\n$/,
          );
        },
        10_000,
        250,
      );

      // The same credentials from the Lanyard config file, written by `config set-credentials` with mode 0600.
      const cfgHome = fs.mkdtempSync(path.join(home, 'cfg-'));
      const cfgEnv = { XDG_CONFIG_HOME: cfgHome };
      const set = await lanyard(
        'admin',
        [
          'config',
          'set-credentials',
          '--server',
          cp.server,
          '--certificate-authority',
          cp.caFile,
          '--project',
          shop,
        ],
        {
          env: cfgEnv,
          stdin: `${token}\n`,
        },
      );
      expect(set.exitCode).toBe(0);
      expect(fs.statSync(path.join(cfgHome, 'lanyard', 'config')).mode & 0o777).toBe(0o600);
      expect(set.stdout + set.stderr).not.toContain(token);
      const fromFile = await lanyard('admin', ['get', 'stages'], { env: { ...cfgEnv, KUBECONFIG: '' } });
      expect(fromFile).toMatchObject({ exitCode: 0, stderr: `No stages found in project "${shop}".\n` });

      expect((await asAlice(['delete', 'sat', 'ci-token'])).stdout).toBe(
        'serviceaccounttoken/ci-token deleted\n',
      );
      // The kube-apiserver checks that the Secret still exists (--service-account-lookup); it caches successful
      // authentications for up to 10 s, so the refusal follows within that window.
      await eventually(
        async () => expect((await asToken.raw({ path: stages })).status).toBe(401),
        15_000,
        250,
      );
      const rejected = await lanyardProcess(['get', 'stages', '--project', shop], tokenEnv);
      expect(rejected).toMatchObject({
        exitCode: 4,
        stderr:
          'error: the API server rejected the credentials (401); check LANYARD_TOKEN, the Lanyard config or your kubeconfig\n',
      });
    } finally {
      asToken.close();
    }
  });
});

describe('token not issued (scenario 6)', () => {
  it('gives up after --timeout, removes the empty Secret and exits 6', async () => {
    const shop = await newProject('tnone');
    cleanup.push(shop);
    expect((await lanyard('admin', ['create', 'sa', 'ci-bot', '-p', shop])).exitCode).toBe(0);
    await stopControllerManager();
    try {
      const t0 = Date.now();
      const r = await lanyard('admin', [
        'create',
        'sat',
        't1',
        '--service-account',
        'ci-bot',
        '--timeout',
        '2s',
        '-p',
        shop,
      ]);
      const elapsed = Date.now() - t0;
      expect(r).toMatchObject({
        exitCode: 6,
        stdout: '',
        stderr: `error: serviceaccounttoken "t1" for serviceaccount "ci-bot" in project "${shop}" was not issued within 2s; is the kube-controller-manager token controller running? The empty Secret was removed.\n`,
      });
      expect(elapsed).toBeGreaterThanOrEqual(2_000);
      expect(elapsed).toBeLessThan(3_000);
      expect((await admin.raw({ path: `/api/v1/namespaces/${shop}/secrets/t1` })).status).toBe(404);
    } finally {
      await startControllerManager();
    }
    // The controller is back: tokens are issued again.
    await eventually(
      async () => {
        const r = await lanyard('admin', ['create', 'sat', 't2', '--service-account', 'ci-bot', '-p', shop]);
        expect(r.exitCode).toBe(0);
      },
      30_000,
      500,
    );
  });

  it('shows a spinner on stderr only when stderr is a terminal', async () => {
    const shop = await newProject('tspin');
    cleanup.push(shop);
    await lanyard('admin', ['create', 'sa', 'bot', '-p', shop]);
    const r = await lanyard('admin', ['create', 'sat', 'tok', '--service-account', 'bot', '-p', shop], {
      stderrIsTTY: true,
    });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('waiting for the token of serviceaccounttoken "tok"');
    expect(r.stdout).toMatch(/^eyJ[^\r]*\n$/);
  });
});
