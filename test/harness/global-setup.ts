// Vitest global setup: one control plane per test run, shared by all integration files (each test works in its
// own namespaces). A loopback control endpoint lets a test stop and restart kube-controller-manager.
import fs from 'node:fs';
import http from 'node:http';
import type { TestProject } from 'vitest/node';
import { createKubeClient } from '../../src/kube/client.ts';
import { applyCrds, applyObject } from '../../src/kube/apply.ts';
import { associationAdmissionPolicy } from '../../src/associations/admission-policy.ts';
import { CRD_DIR } from '../../src/sandbox/paths.ts';
import { startControlPlane, type ControlPlane } from '../../src/sandbox/control-plane.ts';

export interface SharedControlPlane {
  server: string;
  issuer: string;
  caPem: string;
  caFile: string;
  adminKubeconfig: string;
  adminToken: string;
  dir: string;
  controlUrl: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    controlPlane: SharedControlPlane;
  }
}

let cp: ControlPlane | undefined;
let control: http.Server | undefined;

export default async function setup(project: TestProject) {
  const t0 = Date.now();
  cp = await startControlPlane({ log: (l) => process.stderr.write(`[control-plane] ${l}\n`) });
  // Lanyard's CRDs are installed once, as the chart would; tests create their objects in their own namespaces.
  const admin = await createKubeClient({ kubeconfig: cp.adminKubeconfig });
  const crds = await applyCrds(admin, CRD_DIR);
  // With its CRD the chart installs the association admission policy (docs/migrate-from-ack.md): so do the tests.
  const lpia = associationAdmissionPolicy();
  for (const obj of [lpia.policy, lpia.binding]) await applyObject(admin, obj, 'lanyard-tests');
  admin.close();
  process.stderr.write(`[control-plane] ${crds.length} CRDs installed\n`);
  process.stderr.write(`[control-plane] ready in ${((Date.now() - t0) / 1000).toFixed(1)}s (${cp.dir})\n`);
  control = http.createServer(async (req, res) => {
    try {
      if (req.method === 'POST' && req.url === '/kcm/stop') await cp!.stopControllerManager();
      else if (req.method === 'POST' && req.url === '/kcm/start') await cp!.startControllerManager();
      else if (req.method === 'POST' && req.url?.startsWith('/users/')) {
        const u = new URL(req.url, 'http://x');
        const user = decodeURIComponent(u.pathname.slice('/users/'.length));
        const groups = u.searchParams.getAll('group');
        res.end(JSON.stringify({ kubeconfig: cp!.userKubeconfig(user, groups) }));
        return;
      } else {
        res.statusCode = 404;
      }
      res.end('{}');
    } catch (e) {
      res.statusCode = 500;
      res.end(JSON.stringify({ error: String(e) }));
    }
  });
  await new Promise<void>((r) => control!.listen(0, '127.0.0.1', () => r()));
  const port = (control.address() as { port: number }).port;
  project.provide('controlPlane', {
    server: cp.server,
    issuer: cp.issuer,
    caPem: cp.caPem,
    caFile: cp.caFile,
    adminKubeconfig: cp.adminKubeconfig,
    adminToken: cp.adminToken,
    dir: cp.dir,
    controlUrl: `http://127.0.0.1:${port}`,
  });
  return async () => {
    control?.close();
    await cp?.stop();
    if (cp) fs.rmSync(cp.dir, { recursive: true, force: true });
  };
}
