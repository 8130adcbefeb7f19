// The CLI's credentials and defaults (docs/security.md): environment, then the Lanyard config file, then kubeconfig.
// This module is the only place the CLI reads the environment or its config file; everything else gets the
// resulting frozen object. There is deliberately no --token flag (tokens on command lines leak into shell history).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

/** The YAML library, loaded on first use: most commands never read a config file (docs/adr/0701-cli-start-path.md). */
const yaml = (): typeof import('yaml') => createRequire(import.meta.url)('yaml') as typeof import('yaml');

/** The environment as the CLI sees it (process.env in production, a plain object in tests). */
export type CliEnv = Readonly<Record<string, string | undefined>>;

/** The real process environment; only main/runtime code calls this. */
export function processEnv(): CliEnv {
  return { ...process.env };
}

export type CliCredentials =
  | {
      kind: 'token';
      /** Where the credentials came from, for messages (`LANYARD_TOKEN` or the config file path). */
      source: string;
      server: string;
      token: string;
      /** Base64 of the PEM bundle, as a kubeconfig's certificate-authority-data. */
      caData?: string;
      insecureSkipTlsVerify: boolean;
    }
  | { kind: 'kubeconfig'; source: string; path?: string; context?: string };

export interface CliSettings {
  credentials: CliCredentials;
  /** The default project (LANYARD_PROJECT, else the config file's `project`); never the kubeconfig namespace. */
  defaultProject?: string;
  /** Non-fatal findings to print as `warning: ...` lines. */
  warnings: string[];
}

/** A problem with the user's environment or config: a usage error (exit 2), nothing was sent. */
export class CliConfigError extends Error {
  override readonly name = 'CliConfigError';
}

export interface CliFs {
  readFile(p: string): string | undefined;
  /** The file's permission bits, or undefined when it does not exist. */
  mode(p: string): number | undefined;
  exists(p: string): boolean;
}

export const nodeFs: CliFs = {
  readFile: (p) => {
    try {
      return fs.readFileSync(p, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  },
  mode: (p) => {
    try {
      return fs.statSync(p).mode & 0o777;
    } catch {
      return undefined;
    }
  },
  exists: (p) => fs.existsSync(p),
};

export interface LanyardConfigFile {
  server?: string;
  token?: string;
  certificateAuthority?: string;
  certificateAuthorityData?: string;
  insecureSkipTLSVerify?: boolean;
  project?: string;
}

const CONFIG_KEYS: ReadonlySet<string> = new Set([
  'server',
  'token',
  'certificateAuthority',
  'certificateAuthorityData',
  'insecureSkipTLSVerify',
  'project',
]);

/** `$LANYARD_CONFIG`, else `$XDG_CONFIG_HOME/lanyard/config`, else `~/.config/lanyard/config`. */
export function configFilePath(env: CliEnv): string {
  if (env.LANYARD_CONFIG) return env.LANYARD_CONFIG;
  const xdg = env.XDG_CONFIG_HOME || path.join(env.HOME ?? '', '.config');
  return path.join(xdg, 'lanyard', 'config');
}

/** Reads and checks the config file; returns undefined when it does not exist. */
export function readConfigFile(
  file: string,
  fsx: CliFs,
): { config: LanyardConfigFile; warnings: string[] } | undefined {
  const text = fsx.readFile(file);
  if (text === undefined) return undefined;
  let doc: unknown;
  try {
    doc = yaml().parse(text);
  } catch (e) {
    throw new CliConfigError(`cannot parse ${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return { config: {}, warnings: [] };
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new CliConfigError(`${file} must be a YAML mapping`);
  const warnings: string[] = [];
  const config: LanyardConfigFile = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (!CONFIG_KEYS.has(k)) {
      warnings.push(`${file}: unknown key "${k}" ignored`);
      continue;
    }
    if (k === 'insecureSkipTLSVerify') {
      if (typeof v !== 'boolean')
        throw new CliConfigError(`${file}: insecureSkipTLSVerify must be true or false`);
      config.insecureSkipTLSVerify = v;
    } else {
      if (typeof v !== 'string') throw new CliConfigError(`${file}: ${k} must be a string`);
      (config as Record<string, string>)[k] = v;
    }
  }
  const mode = fsx.mode(file);
  if (config.token && mode !== undefined && (mode & 0o077) !== 0) {
    warnings.push(`${file} holds a token and is readable by other users; run chmod 600 on it`);
  }
  return { config, warnings };
}

function parseBool(name: string, v: string): boolean {
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new CliConfigError(`invalid ${name} "${v}": use true, false, 1 or 0`);
}

function caDataFromFile(fsx: CliFs, file: string, what: string): string {
  const pem = fsx.readFile(file);
  if (pem === undefined) throw new CliConfigError(`${what} "${file}" does not exist`);
  return Buffer.from(pem).toString('base64');
}

function checkServer(server: string, what: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new CliConfigError(
      `invalid ${what} "${server}": use an https:// URL such as https://10.0.0.1:6443`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new CliConfigError(
      `invalid ${what} "${server}": use an https:// URL such as https://10.0.0.1:6443`,
    );
  }
  return server;
}

/** Resolves credentials and defaults in the order of docs/security.md. Reads files, sends nothing. */
export function loadCliSettings(
  env: CliEnv,
  flags: { kubeconfig?: string; context?: string },
  fsx: CliFs = nodeFs,
): CliSettings {
  const warnings: string[] = [];
  const file = configFilePath(env);
  const fromFile = readConfigFile(file, fsx);
  if (fromFile) warnings.push(...fromFile.warnings);
  const cfg = fromFile?.config ?? {};
  const defaultProject = env.LANYARD_PROJECT || cfg.project || undefined;

  const envServer = env.LANYARD_SERVER || undefined;
  const envToken = env.LANYARD_TOKEN || undefined;
  if (Boolean(envServer) !== Boolean(envToken)) {
    throw new CliConfigError(
      `${envServer ? 'LANYARD_SERVER' : 'LANYARD_TOKEN'} is set but ${envServer ? 'LANYARD_TOKEN' : 'LANYARD_SERVER'} is not; set both or neither`,
    );
  }
  const envInsecure =
    env.LANYARD_INSECURE_SKIP_TLS_VERIFY !== undefined && env.LANYARD_INSECURE_SKIP_TLS_VERIFY !== ''
      ? parseBool('LANYARD_INSECURE_SKIP_TLS_VERIFY', env.LANYARD_INSECURE_SKIP_TLS_VERIFY)
      : undefined;
  if (envServer && envToken) {
    const caFile = env.LANYARD_CERTIFICATE_AUTHORITY || undefined;
    return freeze({
      credentials: {
        kind: 'token',
        source: 'LANYARD_TOKEN',
        server: checkServer(envServer, 'LANYARD_SERVER'),
        token: envToken.trim(),
        caData: caFile ? caDataFromFile(fsx, caFile, 'LANYARD_CERTIFICATE_AUTHORITY') : undefined,
        insecureSkipTlsVerify: envInsecure ?? false,
      },
      defaultProject,
      warnings,
    });
  }
  if (cfg.server && cfg.token) {
    const caData = cfg.certificateAuthorityData
      ? cfg.certificateAuthorityData
      : cfg.certificateAuthority
        ? caDataFromFile(fsx, cfg.certificateAuthority, `${file}: certificateAuthority`)
        : undefined;
    return freeze({
      credentials: {
        kind: 'token',
        source: file,
        server: checkServer(cfg.server, `server in ${file}`),
        token: cfg.token.trim(),
        caData,
        insecureSkipTlsVerify: envInsecure ?? cfg.insecureSkipTLSVerify ?? false,
      },
      defaultProject,
      warnings,
    });
  }
  return freeze({
    credentials: { kind: 'kubeconfig', ...resolveKubeconfig(env, flags, fsx) },
    defaultProject,
    warnings,
  });
}

function resolveKubeconfig(
  env: CliEnv,
  flags: { kubeconfig?: string; context?: string },
  fsx: CliFs,
): { source: string; path?: string; context?: string } {
  if (flags.kubeconfig) {
    if (!fsx.exists(flags.kubeconfig))
      throw new CliConfigError(`--kubeconfig "${flags.kubeconfig}" does not exist`);
    return { source: flags.kubeconfig, path: flags.kubeconfig, context: flags.context };
  }
  // KUBECONFIG may list several files; like kubectl's loader for a single user, the first existing one is used.
  const listed = (env.KUBECONFIG ?? '').split(path.delimiter).filter(Boolean);
  const found = listed.find((p) => fsx.exists(p));
  if (found) return { source: found, path: found, context: flags.context };
  const home = path.join(env.HOME ?? '', '.kube', 'config');
  if (fsx.exists(home)) return { source: home, path: home, context: flags.context };
  throw new CliConfigError(
    'no credentials: set LANYARD_SERVER and LANYARD_TOKEN, run "lanyard config set-credentials", or provide a kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config)',
  );
}

function freeze(s: CliSettings): CliSettings {
  Object.freeze(s.credentials);
  Object.freeze(s.warnings);
  return Object.freeze(s);
}

/** Merges `update` into the config file and writes it with mode 0600 (it may hold a token). */
export function writeConfigFile(
  file: string,
  update: LanyardConfigFile,
  fsx: CliFs = nodeFs,
): LanyardConfigFile {
  const existing = readConfigFile(file, fsx)?.config ?? {};
  const merged: LanyardConfigFile = { ...existing };
  for (const [k, v] of Object.entries(update))
    if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // Write to a private temporary file and rename, so the token is never readable by others, not even briefly.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, yaml().stringify(merged), { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
  return merged;
}
/** Where the CLI's own AWS calls go (docs/explain-and-iam.md): the SDK's default chain supplies the credentials. */
export interface CliAwsSettings {
  region: string;
  /** One endpoint for IAM and STS (the simulator); undefined: AWS's. */
  endpointUrl?: string;
}

/** `--aws-region` > AWS_REGION > AWS_DEFAULT_REGION > us-east-1; `--aws-endpoint-url` > AWS_ENDPOINT_URL. */
export function cliAwsSettings(
  env: CliEnv,
  flags: { region?: string; endpointUrl?: string },
): CliAwsSettings {
  const region = flags.region || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
  const endpointUrl = flags.endpointUrl || env.AWS_ENDPOINT_URL || undefined;
  if (endpointUrl !== undefined) {
    try {
      new URL(endpointUrl);
    } catch {
      throw new CliConfigError(
        `invalid --aws-endpoint-url "${endpointUrl}": use a URL such as http://127.0.0.1:4566`,
      );
    }
  }
  return { region, ...(endpointUrl ? { endpointUrl } : {}) };
}
