// Shared by the wire tests (docs/adr/0402-moto-wire-comparison.md): whether moto is installed, a free loopback port
// for it, and a proxy that records raw answers.
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';

const probe = spawnSync('python3', ['-c', 'import moto.server'], { encoding: 'utf8' });
/** Why moto cannot run here, or '' when it can. */
export const motoMissing =
  probe.status !== 0
    ? `moto is not installed (python3 -c "import moto.server": ${(probe.stderr || probe.error?.message || '').trim().split('\n').at(-1)})`
    : '';
if (motoMissing)
  process.stderr.write(`[wire] SKIPPED: ${motoMissing}; install it with: pip install 'moto[server]'\n`);

export interface Exchange {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Loopback proxy that forwards byte-for-byte (the Host header included, so signatures still verify) and records answers. */
export async function recordingProxy(
  target: string,
): Promise<{ url: string; last(): Exchange; close(): Promise<void> }> {
  const t = new URL(target);
  const seen: Exchange[] = [];
  const server = http.createServer((req, res) => {
    const up = http.request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const body = Buffer.concat(chunks);
          seen.push({ status: r.statusCode ?? 0, headers: r.headers, body: body.toString('utf8') });
          res.writeHead(r.statusCode ?? 502, r.headers);
          res.end(body);
        });
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    last: () => seen.at(-1)!,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** `python3 -m moto.server` on a free loopback port, once it answers. */
export async function startMoto(): Promise<{ url: string; stop(): void }> {
  const port = await freePort();
  const moto = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await fetch(`${url}/moto-api/`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline || moto.exitCode !== null) {
      moto.kill('SIGTERM');
      throw new Error(`moto server did not start on ${url}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, stop: () => moto.kill('SIGTERM') };
}
