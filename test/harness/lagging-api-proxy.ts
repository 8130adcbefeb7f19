// A pass-through HTTP proxy in front of the test kube-apiserver that can hold back the bytes of chosen watch streams
// while every other request goes through: a watch that lags behind the API server, made from the outside, so product
// code needs no test hook (docs/adr/1080-webhook-on-the-informer-cache.md). A component under test is given a client
// for the proxy (`client()`); the proxy forwards each request over TLS with the admin's credentials.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { createKubeClient, type KubeClient, type WatchEvent } from '../../src/kube/client.ts';
import { staticKubeconfig } from '../../src/kube/kubeconfig.ts';
import { controlPlane } from './context.ts';

export interface HeldWatches {
  /** Resolves when an event held back so far (or later) matches: the component cannot have seen it. */
  holding(matches: (e: WatchEvent) => boolean): Promise<WatchEvent>;
  /** Writes every held byte, in order, and lets the streams flow again. */
  release(): void;
}

export interface LaggingApiProxy {
  url: string;
  /** A client that talks to the API server through this proxy (the admin's credentials, added by the proxy). */
  client(): Promise<KubeClient>;
  /** From now until `release`, holds back the bytes of every watch stream of `path` (open and later ones). */
  holdWatches(path: string): HeldWatches;
  close(): Promise<void>;
}

interface Hold {
  path: string;
  /** Held events so far (complete lines of held bytes), for `holding`. */
  events: WatchEvent[];
  waiters: Array<{ matches: (e: WatchEvent) => boolean; resolve: (e: WatchEvent) => void }>;
  /** Per held stream: what to run at release (write its bytes, end it if the upstream ended meanwhile). */
  flush: Set<() => void>;
}

export async function startLaggingApiProxy(): Promise<LaggingApiProxy> {
  const kubeconfig = controlPlane().adminKubeconfig;
  const upstream = await staticKubeconfig(kubeconfig);
  if (!upstream) throw new Error(`${kubeconfig}: the proxy needs static admin credentials`);
  const tlsOptions: https.RequestOptions = { headers: {} };
  await upstream.auth.applyToHTTPSOptions(tlsOptions);
  const agent = new https.Agent({ keepAlive: true });
  let hold: Hold | undefined;
  const sockets = new Set<Socket>();

  const heldEvent = (h: Hold, e: WatchEvent) => {
    h.events.push(e);
    for (const w of [...h.waiters]) {
      if (!w.matches(e)) continue;
      h.waiters.splice(h.waiters.indexOf(w), 1);
      w.resolve(e);
    }
  };

  const isWatchOf = (url: URL, path: string) =>
    url.pathname === path && ['true', '1'].includes(url.searchParams.get('watch') ?? '');

  /** Copies a watch answer to the client, holding its bytes while `hold` covers its path. */
  const pipeWatch = (up: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
    let pending: Buffer[] = [];
    let partial = '';
    let ended = false;
    let mine: Hold | undefined;
    const flush = () => {
      for (const c of pending) res.write(c);
      pending = [];
      mine = undefined;
      if (ended) res.end();
    };
    const decoder = new StringDecoder('utf8');
    up.on('data', (c: Buffer) => {
      const h = hold && isWatchOf(url, hold.path) ? hold : undefined;
      if (h && !mine) {
        mine = h;
        h.flush.add(flush);
      }
      if (mine) pending.push(c);
      else res.write(c);
      // Lines are followed from the stream's start, so a hold that begins mid-line still parses whole events.
      partial += decoder.write(c);
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl).trim();
        partial = partial.slice(nl + 1);
        if (line && mine) heldEvent(mine, JSON.parse(line) as WatchEvent);
      }
    });
    up.on('end', () => {
      ended = true;
      if (!mine) res.end();
    });
    up.on('error', () => res.destroy());
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', upstream.server);
    const headers = { ...req.headers, ...(tlsOptions.headers as Record<string, string>) };
    delete headers.host;
    const out = https.request(url, { ...tlsOptions, agent, method: req.method, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (['true', '1'].includes(url.searchParams.get('watch') ?? '')) pipeWatch(up, res, url);
      else up.pipe(res);
    });
    out.on('error', () => res.destroy());
    res.on('close', () => out.destroy());
    req.pipe(out);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    client: () => createKubeClient({ kubeconfig, server: url }),
    holdWatches(path) {
      const current: Hold = { path, events: [], waiters: [], flush: new Set() };
      hold = current;
      return {
        holding(matches) {
          const seen = current.events.find(matches);
          if (seen) return Promise.resolve(seen);
          return new Promise((resolve) => current.waiters.push({ matches, resolve }));
        },
        release() {
          if (hold === current) hold = undefined;
          for (const f of current.flush) f();
          current.flush.clear();
        },
      };
    },
    async close() {
      hold = undefined;
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
