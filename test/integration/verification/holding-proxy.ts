// A pass-through HTTP proxy in front of the AWS simulator that can hold chosen requests until the test lets them go.
// It forces interleavings (an exchange in flight while something else changes) without a hook in product code: the
// controller is simply pointed at the proxy with `--aws-endpoint-url`. Headers and body go through unchanged, so
// SigV4 signatures still verify at the simulator.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface HeldRequests {
  /** Resolves when the first matching request has arrived (and is being held). */
  arrived: Promise<void>;
  /** Forwards every held request and stops holding. */
  release(): void;
}

export interface HoldingProxy {
  url: string;
  /** Holds requests whose form body matches, from now until `release()`. */
  hold(matches: (form: URLSearchParams) => boolean): HeldRequests;
  close(): Promise<void>;
}

export async function startHoldingProxy(target: string): Promise<HoldingProxy> {
  const upstream = new URL(target);
  let rule:
    | { matches: (form: URLSearchParams) => boolean; arrived: () => void; waiting: Array<() => void> }
    | undefined;
  const sockets = new Set<Socket>();

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
    const out = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    out.end(body);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const r = rule;
      if (r && r.matches(new URLSearchParams(body.toString('utf8')))) {
        r.waiting.push(() => forward(req, res, body));
        r.arrived();
        return;
      }
      forward(req, res, body);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    hold(matches) {
      let arrived!: () => void;
      const promise = new Promise<void>((r) => {
        arrived = r;
      });
      const current = { matches, arrived, waiting: [] as Array<() => void> };
      rule = current;
      return {
        arrived: promise,
        release() {
          if (rule === current) rule = undefined;
          for (const go of current.waiting.splice(0)) go();
        },
      };
    },
    async close() {
      rule = undefined;
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
