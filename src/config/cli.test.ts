import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFilePath, loadCliSettings, writeConfigFile, type CliFs } from './cli.ts';

function memFs(files: Record<string, { text: string; mode?: number }>): CliFs {
  return {
    readFile: (p) => files[p]?.text,
    mode: (p) => (files[p] ? (files[p].mode ?? 0o600) : undefined),
    exists: (p) => p in files,
  };
}

describe('loadCliSettings', () => {
  const env = { HOME: '/home/u' };
  const cfgPath = '/home/u/.config/lanyard/config';

  it('prefers LANYARD_SERVER + LANYARD_TOKEN', () => {
    const s = loadCliSettings(
      {
        ...env,
        LANYARD_SERVER: 'https://k:6443',
        LANYARD_TOKEN: 'tok\n',
        LANYARD_INSECURE_SKIP_TLS_VERIFY: '1',
        LANYARD_CERTIFICATE_AUTHORITY: '/ca.pem',
      },
      {},
      memFs({
        '/ca.pem': { text: 'PEM' },
        [cfgPath]: { text: 'server: https://other\ntoken: t2\nproject: shop\n' },
      }),
    );
    expect(s.credentials).toEqual({
      kind: 'token',
      source: 'LANYARD_TOKEN',
      server: 'https://k:6443',
      token: 'tok',
      caData: Buffer.from('PEM').toString('base64'),
      insecureSkipTlsVerify: true,
    });
    expect(s.defaultProject).toBe('shop');
    expect(Object.isFrozen(s)).toBe(true);
  });

  it('refuses half-set or malformed environment values', () => {
    expect(() => loadCliSettings({ ...env, LANYARD_SERVER: 'https://k' }, {}, memFs({}))).toThrow(
      'LANYARD_SERVER is set but LANYARD_TOKEN is not; set both or neither',
    );
    expect(() => loadCliSettings({ ...env, LANYARD_TOKEN: 'x' }, {}, memFs({}))).toThrow(
      'LANYARD_TOKEN is set but LANYARD_SERVER is not',
    );
    expect(() =>
      loadCliSettings(
        { ...env, LANYARD_SERVER: 'https://k', LANYARD_TOKEN: 't', LANYARD_INSECURE_SKIP_TLS_VERIFY: 'yes' },
        {},
        memFs({}),
      ),
    ).toThrow('invalid LANYARD_INSECURE_SKIP_TLS_VERIFY "yes": use true, false, 1 or 0');
    expect(() =>
      loadCliSettings({ ...env, LANYARD_SERVER: 'k:6443', LANYARD_TOKEN: 't' }, {}, memFs({})),
    ).toThrow(/invalid LANYARD_SERVER "k:6443"/);
  });

  it('reads the XDG config file, warns on unknown keys and loose permissions', () => {
    const s = loadCliSettings(
      { ...env, XDG_CONFIG_HOME: '/x' },
      {},
      memFs({
        '/x/lanyard/config': {
          text: 'server: https://k\ntoken: t\ncertificateAuthorityData: QQ==\ncolour: blue\nproject: shop\n',
          mode: 0o644,
        },
      }),
    );
    expect(s.credentials).toMatchObject({
      kind: 'token',
      source: '/x/lanyard/config',
      caData: 'QQ==',
      insecureSkipTlsVerify: false,
    });
    expect(s.warnings).toEqual([
      '/x/lanyard/config: unknown key "colour" ignored',
      '/x/lanyard/config holds a token and is readable by other users; run chmod 600 on it',
    ]);
    expect(configFilePath({ LANYARD_CONFIG: '/c' })).toBe('/c');
  });

  it('falls back to kubeconfig: --kubeconfig, then KUBECONFIG, then ~/.kube/config; never its namespace', () => {
    const fsx = memFs({ '/k1': { text: '' }, '/home/u/.kube/config': { text: '' } });
    expect(loadCliSettings(env, { kubeconfig: '/k1', context: 'c' }, fsx).credentials).toEqual({
      kind: 'kubeconfig',
      source: '/k1',
      path: '/k1',
      context: 'c',
    });
    expect(loadCliSettings({ ...env, KUBECONFIG: '/missing:/k1' }, {}, fsx).credentials).toMatchObject({
      path: '/k1',
    });
    expect(loadCliSettings(env, {}, fsx).credentials).toMatchObject({ path: '/home/u/.kube/config' });
    expect(() => loadCliSettings({ HOME: '/nobody' }, {}, memFs({}))).toThrow(/^no credentials/);
    expect(() => loadCliSettings(env, { kubeconfig: '/nope' }, fsx)).toThrow(
      '--kubeconfig "/nope" does not exist',
    );
    expect(loadCliSettings({ ...env, LANYARD_PROJECT: 'p' }, {}, fsx).defaultProject).toBe('p');
  });

  it('refuses a malformed config file', () => {
    expect(() =>
      loadCliSettings(env, {}, memFs({ [cfgPath]: { text: 'insecureSkipTLSVerify: "yes"' } })),
    ).toThrow('insecureSkipTLSVerify must be true or false');
    expect(() => loadCliSettings(env, {}, memFs({ [cfgPath]: { text: '- a' } }))).toThrow(
      'must be a YAML mapping',
    );
  });
});

describe('writeConfigFile', () => {
  it('writes 0600, merging with existing keys', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-cfg-'));
    const file = path.join(dir, 'lanyard', 'config');
    writeConfigFile(file, { project: 'shop' });
    fs.chmodSync(file, 0o644);
    writeConfigFile(file, { server: 'https://k', token: 't' });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const s = loadCliSettings({ LANYARD_CONFIG: file }, {});
    expect(s).toMatchObject({
      defaultProject: 'shop',
      credentials: { server: 'https://k', token: 't' },
      warnings: [],
    });
    fs.rmSync(dir, { recursive: true });
  });
});
