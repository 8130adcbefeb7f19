// A real node for the test cluster and the sandbox (docs/adr/0710): its own network namespace joined to the
// host by a veth pair, containerd with its own config, root and socket, a CNI bridge network for Pods, the
// kubelet, kube-scheduler and kube-proxy. The control plane runs in the same namespace (startControlPlane's
// `network` option), so the API server reaches Services through kube-proxy's rules and the kubelet at the
// node's address, and two test runs on one machine never share a port, a rule or a bridge.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { binaryDir } from './binaries.ts';
import { httpsGet, launch, terminate, type ControlPlane, type Launched } from './control-plane.ts';
import { sleep } from '../runtime/clock.ts';

/** Where Pods see the EKS Pod Identity Agent; the AWS SDK accepts plain http only at this address. */
export const POD_IDENTITY_AGENT_IP = '169.254.170.23';
const SERVICE_CIDR = '10.0.0.0/24';

export interface NodeNetwork {
  /** The `ip netns` name of the node's network namespace. */
  netns: string;
  /** The host's end of the veth pair: servers the Pods must reach (the AWS simulator) listen here. */
  hostIp: string;
  /** The namespace's end: the API server, and the node's InternalIP (the kubelet serves logs here). */
  nodeIp: string;
  podCidr: string;
  gatewayIp: string;
  remove(): void;
}

/** One file per node network, naming the process that made it, so a later run can tell a leak from a live run. */
const OWNERS_DIR = '/run/lanyard-node';

/** A process's start time (clock ticks since boot): with the pid, it names the process even after pid reuse. */
function startTime(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)!.split(' ')[19];
  } catch {
    return undefined;
  }
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Creates the node's network namespace: a veth link 100.X.Y.0/30 to the host (host .1, node .2), the Pod
 * range 100.X.(Y+1).0/24 routed from the host into the namespace, and a route for the Service range so
 * connections to a ClusterIP from the namespace itself (the API server calling a webhook) have a route for
 * kube-proxy's rules to rewrite (a ClusterIP without endpoints ends at the host, which does not forward).
 * There is no default route: nothing leaves the machine.
 */
export function createNodeNetwork(): NodeNetwork {
  const id = crypto.randomBytes(4).toString('hex');
  const netns = `lanyard-${id}`;
  const used = ip('-4', 'route', 'show', 'table', 'all') + ip('-4', 'addr');
  let x = 0;
  let y = 0;
  for (let tries = 0; ; tries++) {
    x = 64 + crypto.randomInt(64);
    y = 2 * crypto.randomInt(128);
    if (!used.includes(`100.${x}.${y}.`) && !used.includes(`100.${x}.${y + 1}.`)) break;
    if (tries > 50) throw new Error('no free 100.64.0.0/10 range for the node network');
  }
  const hostIp = `100.${x}.${y}.1`;
  const nodeIp = `100.${x}.${y}.2`;
  const podCidr = `100.${x}.${y + 1}.0/24`;
  const hostLink = `lyh${id}`;
  const nodeLink = `lyn${id}`;
  const owner = path.join(OWNERS_DIR, `${netns}.json`);
  const remove = () => {
    for (const args of [
      ['netns', 'delete', netns],
      ['link', 'delete', hostLink],
    ]) {
      try {
        ip(...args);
      } catch {
        // already gone
      }
    }
    fs.rmSync(owner, { force: true });
  };
  try {
    fs.mkdirSync(OWNERS_DIR, { recursive: true });
    fs.writeFileSync(owner, JSON.stringify({ pid: process.pid, start: startTime(process.pid) }));
    ip('netns', 'add', netns);
    ip('link', 'add', hostLink, 'type', 'veth', 'peer', 'name', nodeLink);
    ip('link', 'set', nodeLink, 'netns', netns);
    ip('addr', 'add', `${hostIp}/30`, 'dev', hostLink);
    ip('link', 'set', hostLink, 'up');
    ip('-n', netns, 'link', 'set', 'lo', 'up');
    ip('-n', netns, 'addr', 'add', `${nodeIp}/30`, 'dev', nodeLink);
    ip('-n', netns, 'link', 'set', nodeLink, 'up');
    ip('-n', netns, 'route', 'add', SERVICE_CIDR, 'via', hostIp, 'dev', nodeLink);
    ip('route', 'add', podCidr, 'via', nodeIp, 'dev', hostLink);
    execFileSync('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  } catch (e) {
    remove();
    throw e;
  }
  return { netns, hostIp, nodeIp, podCidr, gatewayIp: `100.${x}.${y + 1}.1`, remove };
}

interface Proc {
  pid: number;
  ppid: number;
  netns: number;
  cmdline: string;
  root: string;
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const d of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      out.push({
        pid: Number(d),
        ppid: Number(fs.readFileSync(`/proc/${d}/stat`, 'utf8').split(') ').at(-1)!.split(' ')[1]),
        netns: fs.statSync(`/proc/${d}/ns/net`).ino,
        cmdline: fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replaceAll('\0', ' '),
        root: fs.readlinkSync(`/proc/${d}/root`),
      });
    } catch {
      // exited meanwhile, or a kernel thread
    }
  }
  return out;
}

/**
 * Removes what runs killed mid-way left behind (docs/adr/0711): a node network is stale when the process that made
 * it is gone (its owner file says which), or, for networks made before owner files existed, when every process in
 * it is an orphan (re-parented to init, or a child of another process in it). Its processes, the containers
 * started from its run directories (their root is under them) and their network namespaces, the directories'
 * mounts and the directories go, then the namespace (and with it the veth pair and the Pod route). A live run is
 * never touched: its processes have its test or sandbox process as parent. Returns the namespaces removed.
 */
export function removeStaleNodeRuns(log: (line: string) => void = () => {}): string[] {
  const removed: string[] = [];
  const names = fs.existsSync('/run/netns')
    ? fs.readdirSync('/run/netns').filter((n) => /^lanyard-[0-9a-f]+$/.test(n))
    : [];
  const procs = processes();
  const hostNetns = fs.statSync('/proc/self/ns/net').ino;
  for (const netns of names) {
    let ino: number;
    try {
      ino = fs.statSync(`/run/netns/${netns}`).ino;
    } catch {
      continue;
    }
    const members = procs.filter((p) => p.netns === ino);
    const ownerFile = path.join(OWNERS_DIR, `${netns}.json`);
    let stale: boolean;
    if (fs.existsSync(ownerFile)) {
      const o = JSON.parse(fs.readFileSync(ownerFile, 'utf8')) as { pid: number; start?: string };
      stale = startTime(o.pid) === undefined || startTime(o.pid) !== o.start;
    } else {
      stale =
        members.length > 0 && members.every((p) => p.ppid === 1 || members.some((m) => m.pid === p.ppid));
    }
    if (!stale) continue;
    const dirPattern = new RegExp(
      `${os.tmpdir().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/lanyard-(?:node|cp)-[A-Za-z0-9]+`,
      'g',
    );
    const dirs = [...new Set(members.flatMap((p) => p.cmdline.match(dirPattern) ?? []))];
    const under = (x: string) => dirs.some((d) => x === d || x.startsWith(`${d}/`) || x.includes(`${d}/`));
    const victims = procs.filter((p) => p.netns === ino || under(p.cmdline) || under(p.root));
    const podNetns = new Set(victims.map((p) => p.netns).filter((n) => n !== ino && n !== hostNetns));
    sigkill(victims.map((p) => p.pid));
    removePodNetworkNamespaces(podNetns);
    for (const d of dirs) unmountAndRemove(d);
    try {
      ip('netns', 'delete', netns);
    } catch {
      // gone
    }
    fs.rmSync(ownerFile, { force: true });
    removed.push(netns);
    log(
      `removed the stale node network ${netns}: ${victims.length} processes, ${podNetns.size} Pod network namespaces, ${dirs.join(' ') || 'no run directory'}`,
    );
  }
  // Owner files whose namespace is gone.
  for (const f of fs.existsSync(OWNERS_DIR) ? fs.readdirSync(OWNERS_DIR) : []) {
    if (!fs.existsSync(`/run/netns/${f.replace(/\.json$/, '')}`))
      fs.rmSync(path.join(OWNERS_DIR, f), { force: true });
  }
  return removed;
}

export interface NodeImage {
  name: string;
  archive: string;
  /** Further names of the same image in containerd (e.g. the stable name the samples use, docs/adr/0714). */
  tags?: string[];
}

export interface StartNodeOptions {
  controlPlane: ControlPlane;
  network: NodeNetwork;
  /** OCI archives imported into containerd before the kubelet starts; the pause image must be among them. */
  images: NodeImage[];
  pauseImage: string;
  /** Where Pods' HTTP requests to 169.254.170.23:80 go (the simulated EKS Pod Identity Agent), if anywhere. */
  podIdentityAgent?: { ip: string; port: number };
  dir?: string;
  log?: (line: string) => void;
}

export interface RunningNode {
  name: string;
  dir: string;
  containerdSocket: string;
  /** Directory of the kubelet's container log files: `<namespace>_<pod>_<uid>/<container>/<restart>.log`. */
  podLogsDir: string;
  stop(): Promise<void>;
}

async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  procs: Launched[] = [],
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const dead = procs.find((p) => p.exitCode !== null);
    if (dead) {
      // The run directory goes away on failure: the log's end is the only trace left.
      const { logFile } = dead;
      const tail = fs.existsSync(logFile)
        ? fs.readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n')
        : '';
      throw new Error(
        `${what}: ${dead.spawnargs.slice(0, 5).join(' ')} exited with code ${dead.exitCode}\n${tail}`,
      );
    }
    if (await check()) return;
    await sleep(200);
  }
  throw new Error(`${what} within ${timeoutMs} ms`);
}

function containerdConfig(dir: string, socket: string, pauseImage: string): string {
  return `version = 2
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${pauseImage}"
  # runc cannot lower oom_score_adj on these machines; without this every sandbox fails to start.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${dir}/cni"
`;
}

/** The bridge is inside the node's namespace; no masquerading, and the Pods' only way out is the node. */
function cniConfig(dir: string, network: NodeNetwork): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: network.netns,
      plugins: [
        {
          type: 'bridge',
          bridge: 'pods',
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: network.podCidr, gateway: network.gatewayIp }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: `${dir}/cni-ipam`,
          },
        },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(dir: string, socket: string, nodeIp: string): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 and containerd 1.6 (no RuntimeConfig call): kubelet uses the driver configured here.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
containerRuntimeEndpoint: unix://${socket}
# A test node: the API server reads logs and runs exec as anonymous.
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
address: ${nodeIp}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
podLogsDir: ${dir}/pod-logs
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
staticPodPath: ""
`;
}

function kubeProxyConfig(kubeconfig: string, network: NodeNetwork, nodeName: string): string {
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: ${JSON.stringify(kubeconfig)}}
mode: iptables
clusterCIDR: ${network.podCidr}
hostnameOverride: ${nodeName}
bindAddress: ${network.nodeIp}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Leave the machine's conntrack sysctls alone (the namespace shares them with the host).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, masqueradeAll: false, minSyncPeriod: 0s, syncPeriod: 30s}
`;
}

const BOLT_DATABASES = [
  'io.containerd.metadata.v1.bolt/meta.db',
  'io.containerd.snapshotter.v1.overlayfs/metadata.db',
];

/** `ctr` against the containerd at `socket`, in the CRI's namespace (k8s.io). */
function ctrClient(socket: string): (...args: string[]) => string {
  return (...args: string[]) =>
    execFileSync('ctr', ['--address', socket, '--namespace', 'k8s.io', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
}

/** Waits until containerd answers `ctr version` (30 s; fails at once if it exits). */
async function untilContainerdServes(
  what: string,
  ctr: (...args: string[]) => string,
  containerd: Launched,
): Promise<void> {
  await waitUntil(
    what,
    () => {
      try {
        ctr('version');
        return true;
      } catch {
        return false;
      }
    },
    30_000,
    [containerd],
  );
}

/**
 * A containerd root holding the images, imported once per image set (keyed by their archives, which are named
 * by a hash of their inputs) and cached in ~/.cache/lanyard/containerd: importing unpacks every layer, which
 * takes tens of seconds, copying it by hard links well under one.
 */
async function containerdTemplate(images: NodeImage[], log: (l: string) => void): Promise<string> {
  const cache = path.join(os.homedir(), '.cache', 'lanyard', 'containerd');
  const key = crypto
    .createHash('sha256')
    .update(images.map((i) => [i.name, i.archive, ...(i.tags ?? [])].join(' ')).join('\n'))
    .digest('hex')
    .slice(0, 16);
  const done = path.join(cache, key);
  if (fs.existsSync(path.join(done, 'root'))) {
    const now = new Date();
    fs.utimesSync(done, now, now);
    pruneTemplates(cache, log);
    return path.join(done, 'root');
  }
  fs.mkdirSync(cache, { recursive: true });
  const work = fs.mkdtempSync(path.join(cache, `.${key}-`));
  const socket = path.join(work, 'containerd.sock');
  fs.writeFileSync(
    path.join(work, 'config.toml'),
    `version = 2
root = "${work}/root"
state = "${work}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${work}/opt"
`,
  );
  const containerd = launch(
    'containerd',
    ['--config', path.join(work, 'config.toml')],
    path.join(work, 'containerd.log'),
  );
  const ctr = ctrClient(socket);
  try {
    await untilContainerdServes('containerd (image import) was not serving', ctr, containerd);
    for (const image of images) {
      const t0 = Date.now();
      ctr('images', 'import', image.archive);
      for (const tag of image.tags ?? []) ctr('images', 'tag', '--force', image.name, tag);
      log(`imported ${image.name} in ${((Date.now() - t0) / 1000).toFixed(1)}s (once per image set)`);
    }
  } finally {
    await terminate(containerd);
  }
  fs.mkdirSync(path.join(work, 'done'));
  fs.renameSync(path.join(work, 'root'), path.join(work, 'done', 'root'));
  try {
    fs.renameSync(path.join(work, 'done'), done);
  } catch {
    // Another run made the same template meanwhile; use theirs.
  }
  fs.rmSync(work, { recursive: true, force: true });
  pruneTemplates(cache, log);
  return path.join(done, 'root');
}

/** Templates kept: the newest by last use. Each holds a full image set (about 1 GB unpacked). */
const KEEP_TEMPLATES = 3;
/** A template used this recently may be being copied by another run: never removed. */
const TEMPLATE_GRACE_MS = 3600_000;

/** Keeps the KEEP_TEMPLATES templates used last (their directory's mtime is touched at each use) and any used within the hour. */
function pruneTemplates(cache: string, log: (l: string) => void): void {
  const now = Date.now();
  const entries = fs
    .readdirSync(cache)
    .map((name) => ({ name, mtime: fs.statSync(path.join(cache, name)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  // Finished templates beyond the newest few, and imports abandoned by killed runs (dot directories).
  const finished = entries.filter((e) => !e.name.startsWith('.'));
  const old = [...finished.slice(KEEP_TEMPLATES), ...entries.filter((e) => e.name.startsWith('.'))].filter(
    (e) => now - e.mtime > TEMPLATE_GRACE_MS,
  );
  for (const e of old) {
    fs.rmSync(path.join(cache, e.name), { recursive: true, force: true });
    log(`removed the containerd image template ${e.name} (unused since ${new Date(e.mtime).toISOString()})`);
  }
}

/** Lazily unmounts whatever is still mounted below `dir` (overlays, shm, netns binds), then removes it. */
function unmountAndRemove(dir: string): void {
  for (const m of mountsBelow(dir)) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      // not mounted any more
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Every mount point at or below `dir`, deepest first. */
function mountsBelow(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Waits until each process has exited (gone, or a zombie waiting for its parent), at most `timeoutMs`. */
async function waitForExit(pids: number[], timeoutMs: number): Promise<void> {
  const running = (pid: number) => {
    try {
      return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)!.split(' ')[0] !== 'Z';
    } catch {
      return false;
    }
  };
  const deadline = Date.now() + timeoutMs;
  while (pids.some(running) && Date.now() < deadline) await sleep(50);
}

/** containerd's shims outlive it; they name its socket on their command line. */
function shimPids(socket: string): number[] {
  const pids: number[] = [];
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('containerd-shim') && cmd.includes(socket)) pids.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Pids of the containers' and sandboxes' processes containerd runs (`ctr tasks ls`); none when it does not answer. */
function taskPids(ctr: (...args: string[]) => string): number[] {
  const pids: number[] = [];
  try {
    for (const line of ctr('tasks', 'ls').split('\n').slice(1)) {
      const pid = Number(line.trim().split(/\s+/)[1]);
      if (pid > 0) pids.push(pid);
    }
  } catch {
    // containerd not answering; the shims are killed below
  }
  return pids;
}

/** SIGKILLs each process; returns the network namespaces (inodes) of those it reached. */
function killAll(pids: number[], killed: number[]): Set<number> {
  const netnsInodes = new Set<number>();
  for (const pid of pids) {
    try {
      netnsInodes.add(fs.statSync(`/proc/${pid}/ns/net`).ino);
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // exited meanwhile
    }
  }
  return netnsInodes;
}

/** SIGKILLs each process still there. */
function sigkill(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Removes the Pods' network namespaces (containerd bind-mounts them under /run/netns as `cni-…`) among `inodes`. */
function removePodNetworkNamespaces(inodes: Set<number>): void {
  const hostNetns = fs.statSync('/proc/self/ns/net').ino;
  for (const ns of fs.existsSync('/run/netns')
    ? fs.readdirSync('/run/netns').filter((n) => n.startsWith('cni-'))
    : []) {
    try {
      const ino = fs.statSync(`/run/netns/${ns}`).ino;
      if (ino !== hostNetns && inodes.has(ino)) ip('netns', 'delete', ns);
    } catch {
      // removed meanwhile
    }
  }
}

/** One node being started: its run directory, containerd's socket and the processes started so far. */
class NodeRun {
  readonly log: (line: string) => void;
  readonly dir: string;
  readonly name: string;
  readonly socket: string;
  readonly ctr: (...args: string[]) => string;
  containerd: Launched | undefined;
  kubelet: Launched | undefined;
  proxy: Launched | undefined;
  scheduler: Launched | undefined;
  private readonly killedTasks: number[] = [];

  constructor(readonly o: StartNodeOptions) {
    this.log = o.log ?? (() => {});
    this.dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-node-'));
    this.name = `node-${o.network.netns.slice('lanyard-'.length)}`;
    for (const d of ['cni', 'cni-ipam', 'pod-logs', 'kubelet', 'containerd'])
      fs.mkdirSync(path.join(this.dir, d), { recursive: true });
    this.socket = path.join(this.dir, 'containerd.sock');
    this.ctr = ctrClient(this.socket);
  }

  /** containerd with the images (from the cached template), its config and the Pods' CNI network. */
  async startContainerd(): Promise<void> {
    const { dir, socket, o } = this;
    const template = await containerdTemplate(o.images, this.log);
    // Blobs and unpacked layers never change once written: hard links are enough. containerd writes its two
    // bolt databases, so those are copies.
    execFileSync('cp', ['-al', template, path.join(dir, 'containerd', 'root')]);
    for (const db of BOLT_DATABASES) {
      const file = path.join(dir, 'containerd', 'root', db);
      fs.rmSync(file);
      fs.copyFileSync(path.join(template, db), file);
    }
    fs.writeFileSync(path.join(dir, 'containerd.toml'), containerdConfig(dir, socket, o.pauseImage));
    fs.writeFileSync(path.join(dir, 'cni', '10-pods.conflist'), cniConfig(dir, o.network));
    // Its own process group: a terminal's Ctrl-C reaches the kubelet and the rest at once, and containerd must
    // outlive them so that stop() can list and kill the containers and remove their network namespaces. Killed
    // runs leave it to the next run's clean-up (removeStaleNodeRuns).
    this.containerd = launch(
      'containerd',
      ['--config', path.join(dir, 'containerd.toml')],
      path.join(dir, 'containerd.log'),
      o.network.netns,
      true,
    );
    await untilContainerdServes('containerd was not serving', this.ctr, this.containerd);
    if (o.podIdentityAgent) routePodIdentityAgent(o.network.netns, o.podIdentityAgent);
    this.log(`containerd ready (${socket})`);
  }

  /** The kubelet, kube-proxy and kube-scheduler, each with its own client certificate. */
  startKubernetesProcesses(): void {
    const { dir, name, o } = this;
    const { network } = o;
    const cp = o.controlPlane;
    const bin = binaryDir();
    const nodeUser = cp.userKubeconfig(`system:node:${name}`, ['system:nodes']);
    fs.writeFileSync(path.join(dir, 'kubelet.yaml'), kubeletConfig(dir, this.socket, network.nodeIp));
    this.kubelet = launch(
      path.join(bin, 'kubelet'),
      [
        `--config=${path.join(dir, 'kubelet.yaml')}`,
        `--kubeconfig=${nodeUser}`,
        `--root-dir=${path.join(dir, 'kubelet')}`,
        `--cert-dir=${path.join(dir, 'kubelet', 'pki')}`,
        `--hostname-override=${name}`,
        `--node-ip=${network.nodeIp}`,
        '--v=1',
      ],
      path.join(dir, 'kubelet.log'),
      network.netns,
    );
    const proxyConfig = path.join(dir, 'kube-proxy.yaml');
    fs.writeFileSync(proxyConfig, kubeProxyConfig(cp.userKubeconfig('system:kube-proxy'), network, name));
    this.proxy = launch(
      path.join(bin, 'kube-proxy'),
      [`--config=${proxyConfig}`, '--v=1'],
      path.join(dir, 'kube-proxy.log'),
      network.netns,
    );
    const scheduler = cp.userKubeconfig('system:kube-scheduler');
    this.scheduler = launch(
      path.join(bin, 'kube-scheduler'),
      [
        `--kubeconfig=${scheduler}`,
        `--authentication-kubeconfig=${scheduler}`,
        `--authorization-kubeconfig=${scheduler}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        '--v=1',
      ],
      path.join(dir, 'kube-scheduler.log'),
      network.netns,
    );
  }

  /** Until the Node object says Ready (90 s); fails at once if one of the node's processes exits. */
  async untilReady(): Promise<void> {
    const { name, o } = this;
    const cp = o.controlPlane;
    await waitUntil(
      `node ${name} was not Ready`,
      async () => {
        const r = await httpsGet(`${cp.server}/api/v1/nodes/${name}`, cp.caPem, cp.adminToken);
        if (r.status !== 200) return false;
        const node = JSON.parse(r.body) as { status?: { conditions?: { type: string; status: string }[] } };
        return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      },
      90_000,
      [this.containerd, this.kubelet, this.proxy, this.scheduler].filter((p) => p !== undefined),
    );
    this.log(`node ${name} Ready (${o.network.nodeIp}, Pods in ${o.network.podCidr})`);
  }

  async stop(): Promise<void> {
    await terminate(this.scheduler);
    await terminate(this.proxy);
    await terminate(this.kubelet, 10_000);
    // Kill every container's and sandbox's process, and remove the sandboxes' network namespaces (containerd
    // bind-mounts them under /run/netns; only the CRI's sandbox stop would remove them).
    if (this.containerd && this.containerd.exitCode === null)
      removePodNetworkNamespaces(killAll(taskPids(this.ctr), this.killedTasks));
    await terminate(this.containerd);
    const shims = shimPids(this.socket);
    sigkill(shims);
    // SIGKILL is asynchronous: stop() returns once the containers and shims are really gone (docs/adr/0714).
    await waitForExit([...this.killedTasks, ...shims], 5000);
    unmountAndRemove(this.dir);
  }
}

/** The simulated agent listens on the host; Pods call the address the SDK accepts for plain http. */
function routePodIdentityAgent(netns: string, agent: { ip: string; port: number }): void {
  execFileSync('ip', [
    'netns',
    'exec',
    netns,
    'iptables',
    '-t',
    'nat',
    '-A',
    'PREROUTING',
    '-d',
    `${POD_IDENTITY_AGENT_IP}/32`,
    '-p',
    'tcp',
    '--dport',
    '80',
    '-j',
    'DNAT',
    '--to-destination',
    `${agent.ip}:${agent.port}`,
  ]);
}

export async function startNode(o: StartNodeOptions): Promise<RunningNode> {
  const run = new NodeRun(o);
  const stop = () => run.stop();
  try {
    await run.startContainerd();
    run.startKubernetesProcesses();
    await run.untilReady();
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    name: run.name,
    dir: run.dir,
    containerdSocket: run.socket,
    podLogsDir: path.join(run.dir, 'pod-logs'),
    stop,
  };
}
