// Starts a real etcd + kube-apiserver + kube-controller-manager on free loopback ports (docs/adr/0001).
// Used by the integration tests (one control plane per run), `npm run control-plane` and `lanyard up`.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import { binaries, missingBinaries, binaryDir } from './binaries.ts';
import { sleep } from '../runtime/clock.ts';

export interface ControlPlane {
  dir: string;
  server: string;
  /** Service-account issuer; it is the API server itself, so OIDC discovery and JWKS are served there. */
  issuer: string;
  caPem: string;
  caFile: string;
  adminKubeconfig: string;
  adminToken: string;
  /** Writes a kubeconfig for a client-certificate user (CN = user, O = groups). */
  userKubeconfig(user: string, groups?: string[]): string;
  stopControllerManager(): Promise<void>;
  startControllerManager(): Promise<void>;
  stop(): Promise<void>;
}

/** The user of the admin kubeconfig, which Lanyard's processes use in tests and the sandbox. */
export const ADMIN_USER = 'admin';

export interface StartOptions {
  dir?: string;
  log?: (line: string) => void;
  /** Extra kube-controller-manager controllers beyond the defaults. */
  controllers?: string[];
  /**
   * Run every process in this network namespace and serve the API on `address` (the test node's address,
   * docs/adr/0710) instead of loopback; the `kubernetes` Service then points at it, so Pods reach the API.
   */
  network?: { netns: string; address: string };
}

const DEFAULT_CONTROLLERS = [
  'serviceaccount-token-controller',
  'serviceaccount-controller',
  'namespace-controller',
  'garbage-collector-controller',
  'root-ca-certificate-publisher-controller',
];

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCertificates(dir: string, extraIps: string[]): void {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '3650',
      '-subj',
      '/CN=lanyard-test-ca',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  openssl(
    [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=kube-apiserver',
      '-keyout',
      'apiserver.key',
      '-out',
      'apiserver.csr',
    ],
    dir,
  );
  fs.writeFileSync(
    path.join(dir, 'apiserver.ext'),
    `subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1${extraIps.map((ip) => `,IP:${ip}`).join('')}\nextendedKeyUsage=serverAuth\n`,
  );
  signWithCa(dir, 'apiserver', 3650);
  openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

/** Signs `<base>.csr` with the test CA (ca.crt, ca.key in `dir`) and the extensions of `<base>.ext` into `<base>.crt`. */
function signWithCa(dir: string, base: string, days: number): void {
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${base}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      String(days),
      '-out',
      `${base}.crt`,
      '-extfile',
      `${base}.ext`,
    ],
    dir,
  );
}

function clientCert(dir: string, user: string, groups: string[]): { cert: string; key: string } {
  const safe = user.replace(/[^a-zA-Z0-9_.-]/g, '_');
  const base = `user-${safe}-${groups.join('_').replace(/[^a-zA-Z0-9_.-]/g, '_')}`;
  const subj = `/CN=${user.replace(/\//g, '\\/')}${groups.map((g) => `/O=${g.replace(/\//g, '\\/')}`).join('')}`;
  openssl(
    ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', subj, '-keyout', `${base}.key`, '-out', `${base}.csr`],
    dir,
  );
  fs.writeFileSync(path.join(dir, `${base}.ext`), 'extendedKeyUsage=clientAuth\n');
  signWithCa(dir, base, 365);
  return { cert: path.join(dir, `${base}.crt`), key: path.join(dir, `${base}.key`) };
}

function kubeconfigYaml(server: string, caFile: string, user: Record<string, string>, name: string): string {
  const userLines = Object.entries(user)
    .map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`)
    .join('\n');
  return `apiVersion: v1
kind: Config
clusters:
- name: lanyard-local
  cluster:
    server: ${server}
    certificate-authority: ${JSON.stringify(caFile)}
users:
- name: ${name}
  user:
${userLines}
contexts:
- name: ${name}@lanyard-local
  context: {cluster: lanyard-local, user: ${name}}
current-context: ${name}@lanyard-local
`;
}

export async function httpsGet(
  url: string,
  ca: string,
  token: string,
): Promise<{ status: number; body: string }> {
  return await new Promise((resolve) => {
    const req = https.get(
      url,
      { ca, headers: { authorization: `Bearer ${token}` }, timeout: 2000 },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.on('timeout', () => req.destroy());
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, proc?: ChildProcess) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && proc.exitCode !== null)
      throw new Error(`${what} exited with code ${proc.exitCode}; see its log`);
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`${what} was not ready within ${timeoutMs} ms`);
}

/** A process `launch` started, with the file its output goes to: on failure, its end is the only trace left. */
export type Launched = ChildProcess & { readonly logFile: string };

/**
 * Starts a child process with its output appended to `logFile`, in network namespace `netns` if given. With
 * `ownProcessGroup`, a terminal's Ctrl-C (sent to the whole foreground process group) does not reach it, so the
 * parent can still use it while it tears down the rest (containerd: docs/adr/0714).
 */
export function launch(
  bin: string,
  args: string[],
  logFile: string,
  netns?: string,
  ownProcessGroup = false,
): Launched {
  const out = fs.openSync(logFile, 'a');
  // nsenter joins the network namespace only and execs the binary (so the child's pid is the binary's); unlike
  // `ip netns exec` it keeps the host's mounts, where the kubelet finds the cgroups and containerd its volumes.
  const detached = ownProcessGroup;
  const child = netns
    ? spawn('nsenter', [`--net=/run/netns/${netns}`, '--', bin, ...args], {
        stdio: ['ignore', out, out],
        detached,
      })
    : spawn(bin, args, { stdio: ['ignore', out, out], detached });
  fs.closeSync(out);
  return Object.assign(child, { logFile });
}

export async function terminate(child: ChildProcess | undefined, graceMs = 5000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** What the control plane's processes share: where they keep their files, the address served, the tokens. */
interface Layout {
  bin: ReturnType<typeof binaries>;
  dir: string;
  /** The address the API server serves on: loopback, or the node's in its network namespace. */
  host: string;
  netns?: string;
  server: string;
  caFile: string;
  caPem: string;
  adminToken: string;
  kcmToken: string;
  apiPort: number;
  log: (line: string) => void;
}

/** Checks the binaries, makes the directory, the certificates, the token file and picks the API server's port. */
async function prepareLayout(opts: StartOptions): Promise<Layout> {
  const missing = missingBinaries();
  if (missing.length) {
    throw new Error(
      `control-plane binaries missing: ${missing.join(', ')}; run "npm run build:control-plane" (builds into ${binaryDir()})`,
    );
  }
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-cp-'));
  fs.mkdirSync(dir, { recursive: true });
  const host = opts.network?.address ?? '127.0.0.1';
  makeCertificates(dir, opts.network ? [host] : []);
  const adminToken = `admin-${Math.random().toString(36).slice(2)}`;
  const kcmToken = `kcm-${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(
    path.join(dir, 'tokens.csv'),
    `${adminToken},${ADMIN_USER},uid-admin,"system:masters"\n${kcmToken},system:kube-controller-manager,uid-kcm,"system:masters"\n`,
  );
  const apiPort = await freePort();
  const caFile = path.join(dir, 'ca.crt');
  return {
    bin: binaries(),
    dir,
    host,
    netns: opts.network?.netns,
    server: `https://${host}:${apiPort}`,
    caFile,
    caPem: fs.readFileSync(caFile, 'utf8'),
    adminToken,
    kcmToken,
    apiPort,
    log: opts.log ?? (() => {}),
  };
}

/** etcd on loopback (of the network namespace, when there is one); returns its process and client port. */
async function startEtcd(l: Layout): Promise<{ etcd: ChildProcess; etcdPort: number }> {
  const [etcdPort, peerPort] = [await freePort(), await freePort()];
  const etcd = launch(
    l.bin.etcd,
    [
      `--data-dir=${path.join(l.dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ],
    path.join(l.dir, 'etcd.log'),
    l.netns,
  );
  // In a network namespace etcd's loopback is out of reach; the API server's readiness covers it.
  if (!l.netns)
    await waitFor(
      'etcd',
      async () => {
        try {
          const r = await fetch(`http://127.0.0.1:${etcdPort}/health`);
          return r.ok;
        } catch {
          return false;
        }
      },
      20_000,
      etcd,
    );
  l.log(`etcd ready on 127.0.0.1:${etcdPort}`);
  return { etcd, etcdPort };
}

/** kube-apiserver over etcd; it is the service-account issuer too. Returns once /readyz answers. */
async function startApiserver(l: Layout, etcdPort: number): Promise<ChildProcess> {
  const inNetns = l.netns !== undefined;
  const apiserver = launch(
    l.bin.apiserver,
    [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      `--bind-address=${l.host}`,
      // The kubelet is reached at the node's address (there is no DNS for node names).
      ...(inNetns ? [`--advertise-address=${l.host}`, '--kubelet-preferred-address-types=InternalIP'] : []),
      `--secure-port=${l.apiPort}`,
      `--tls-cert-file=${path.join(l.dir, 'apiserver.crt')}`,
      `--tls-private-key-file=${path.join(l.dir, 'apiserver.key')}`,
      `--cert-dir=${l.dir}`,
      `--token-auth-file=${path.join(l.dir, 'tokens.csv')}`,
      `--client-ca-file=${l.caFile}`,
      '--authorization-mode=Node,RBAC',
      `--service-account-issuer=${l.server}`,
      `--service-account-jwks-uri=${l.server}/openid/v1/jwks`,
      `--service-account-key-file=${path.join(l.dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${path.join(l.dir, 'sa.key')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      `--endpoint-reconciler-type=${inNetns ? 'lease' : 'none'}`,
      '--allow-privileged=true',
      '--profiling=false',
      '--v=1',
    ],
    path.join(l.dir, 'kube-apiserver.log'),
    l.netns,
  );
  await waitFor(
    'kube-apiserver',
    async () => (await httpsGet(`${l.server}/readyz`, l.caPem, l.adminToken)).status === 200,
    60_000,
    apiserver,
  );
  l.log(`kube-apiserver ready on ${l.server}`);
  return apiserver;
}

/** EKS publishes its issuer to anyone; the AWS simulator reads discovery and JWKS without credentials. */
async function allowOidcDiscovery(l: Layout): Promise<void> {
  await adminRequest(
    l.server,
    l.caPem,
    l.adminToken,
    'POST',
    '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'lanyard-test-oidc-discovery' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'system:service-account-issuer-discovery',
      },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' }],
    },
  );
}

/** kube-controller-manager, which tests stop and start again (to freeze garbage collection, for instance). */
class ControllerManager {
  private kcm: ChildProcess | undefined;
  private readonly kubeconfig: string;

  constructor(
    private readonly l: Layout,
    readonly controllers: string[],
  ) {
    this.kubeconfig = path.join(l.dir, 'kcm.kubeconfig');
    fs.writeFileSync(this.kubeconfig, kubeconfigYaml(l.server, l.caFile, { token: l.kcmToken }, 'kcm'));
  }

  async start(): Promise<void> {
    const { kcm, l } = this;
    if (kcm && kcm.exitCode === null && kcm.signalCode === null) return;
    const started = launch(
      l.bin.controllerManager,
      [
        `--kubeconfig=${this.kubeconfig}`,
        `--controllers=${this.controllers.join(',')}`,
        `--service-account-private-key-file=${path.join(l.dir, 'sa.key')}`,
        `--root-ca-file=${l.caFile}`,
        '--use-service-account-credentials=false',
        '--leader-elect=false',
        '--secure-port=0',
        '--concurrent-gc-syncs=5',
        '--v=1',
      ],
      path.join(l.dir, 'kube-controller-manager.log'),
      l.netns,
    );
    this.kcm = started;
    // Ready when the serviceaccount controller has made the default ServiceAccount.
    await waitFor(
      'kube-controller-manager',
      async () =>
        (
          await httpsGet(
            `${l.server}/api/v1/namespaces/default/serviceaccounts/default`,
            l.caPem,
            l.adminToken,
          )
        ).status === 200,
      30_000,
      started,
    );
  }

  async stop(): Promise<void> {
    await terminate(this.kcm);
    this.kcm = undefined;
  }
}

/** A kubeconfig for a client-certificate user (CN = user, O = groups), written next to the control plane's files. */
function writeUserKubeconfig(l: Layout, user: string, groups: string[] = []): string {
  const { cert, key } = clientCert(l.dir, user, groups);
  const file = path.join(l.dir, `${path.basename(cert, '.crt')}.kubeconfig`);
  fs.writeFileSync(
    file,
    kubeconfigYaml(
      l.server,
      l.caFile,
      { 'client-certificate': cert, 'client-key': key },
      user.replace(/[^a-zA-Z0-9-]/g, '-'),
    ),
  );
  return file;
}

export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  const started = Date.now();
  const l = await prepareLayout(opts);
  const { etcd, etcdPort } = await startEtcd(l);
  const apiserver = await startApiserver(l, etcdPort);
  const adminKubeconfig = path.join(l.dir, 'admin.kubeconfig');
  fs.writeFileSync(adminKubeconfig, kubeconfigYaml(l.server, l.caFile, { token: l.adminToken }, 'admin'));
  await allowOidcDiscovery(l);
  const kcm = new ControllerManager(l, [...DEFAULT_CONTROLLERS, ...(opts.controllers ?? [])]);
  await kcm.start();
  l.log(
    `kube-controller-manager ready (${kcm.controllers.length} controllers) in ${((Date.now() - started) / 1000).toFixed(1)}s total`,
  );
  return {
    dir: l.dir,
    server: l.server,
    issuer: l.server,
    caPem: l.caPem,
    caFile: l.caFile,
    adminKubeconfig,
    adminToken: l.adminToken,
    userKubeconfig: (user, groups) => writeUserKubeconfig(l, user, groups),
    stopControllerManager: () => kcm.stop(),
    startControllerManager: () => kcm.start(),
    stop: async () => {
      await kcm.stop();
      await terminate(apiserver, 10_000);
      await terminate(etcd);
    },
  };
}

async function adminRequest(
  server: string,
  ca: string,
  token: string,
  method: string,
  p: string,
  body: unknown,
) {
  const payload = JSON.stringify(body);
  await new Promise<void>((resolve, reject) => {
    const req = https.request(
      `${server}${p}`,
      {
        method,
        ca,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          (res.statusCode && res.statusCode < 300) || res.statusCode === 409
            ? resolve()
            : reject(new Error(`${method} ${p}: ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
