import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type https from 'node:https';
import { inClusterConfig, staticKubeconfig, type StaticConfig } from './kubeconfig.ts';

function dir(files: Record<string, string>): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-kubeconfig-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(d, name), text);
  return d;
}

const kubeconfig = (user: string, cluster = 'certificate-authority: ca.crt') => `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443/
    ${cluster}
users:
- name: u
  user:
    ${user}
contexts:
- name: ctx
  context: {cluster: c, user: u}
- name: other
  context: {cluster: c, user: nobody}
current-context: ctx
`;

async function options(
  cfg: StaticConfig | undefined | Promise<StaticConfig | undefined>,
): Promise<https.RequestOptions> {
  const o: https.RequestOptions = {};
  await (await cfg)!.auth.applyToHTTPSOptions(o);
  return o;
}

describe('kubeconfig loading without client-node', () => {
  it('reads a token user and resolves the CA file beside the kubeconfig', async () => {
    const d = dir({ config: kubeconfig('token: abc'), 'ca.crt': 'CA PEM' });
    const cfg = await staticKubeconfig(path.join(d, 'config'));
    expect(cfg!.server).toBe('https://127.0.0.1:6443');
    const o = await options(cfg);
    expect(String(o.ca)).toBe('CA PEM');
    expect(o.rejectUnauthorized).toBe(true);
    expect(o.headers).toEqual({ authorization: 'Bearer abc' });
  });

  it('reads client certificates from files and from inline data', async () => {
    const d = dir({
      config: kubeconfig(
        'client-certificate: u.crt\n    client-key-data: S0VZ',
        'insecure-skip-tls-verify: true',
      ),
      'u.crt': 'CERT',
    });
    const o = await options(staticKubeconfig(path.join(d, 'config')));
    expect(String(o.cert)).toBe('CERT');
    expect(String(o.key)).toBe('KEY');
    expect(o.rejectUnauthorized).toBe(false);
    expect(o.headers).toBeUndefined();
  });

  it('re-reads a token file at every call, so a rotated token is used', async () => {
    const d = dir({ config: kubeconfig('tokenFile: tok'), 'ca.crt': 'x', tok: 'one\n' });
    const cfg = await staticKubeconfig(path.join(d, 'config'));
    expect((await options(cfg)).headers).toEqual({ authorization: 'Bearer one' });
    fs.writeFileSync(path.join(d, 'tok'), 'two');
    expect((await options(cfg)).headers).toEqual({ authorization: 'Bearer two' });
  });

  it('leaves exec plugins, auth providers, proxies and unknown contexts to client-node', async () => {
    const exec = dir({
      config: kubeconfig('exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}'),
      'ca.crt': 'x',
    });
    expect(await staticKubeconfig(path.join(exec, 'config'))).toBeUndefined();
    const provider = dir({ config: kubeconfig('auth-provider: {name: oidc}'), 'ca.crt': 'x' });
    expect(await staticKubeconfig(path.join(provider, 'config'))).toBeUndefined();
    const proxy = dir({ config: kubeconfig('token: a', 'proxy-url: http://proxy:3128'), 'ca.crt': 'x' });
    expect(await staticKubeconfig(path.join(proxy, 'config'))).toBeUndefined();
    const plain = dir({ config: kubeconfig('token: a'), 'ca.crt': 'x' });
    expect(await staticKubeconfig(path.join(plain, 'config'), 'missing')).toBeUndefined();
  });

  it('builds the in-cluster server URL (IPv6 in brackets) and reads the mounted token', async () => {
    const d = dir({ 'ca.crt': 'CLUSTER CA', token: 'sa-token' });
    const cfg = inClusterConfig('fd00::1', '443', d);
    expect(cfg.server).toBe('https://[fd00::1]:443');
    const o = await options(cfg);
    expect(String(o.ca)).toBe('CLUSTER CA');
    expect(o.headers).toEqual({ authorization: 'Bearer sa-token' });
  });
});
