// What an integration test uses: the shared control plane, an admin client, fresh namespaces, test users.
import { inject } from 'vitest';
import { createKubeClient, type KubeClient } from '../../src/kube/client.ts';

export function controlPlane() {
  return inject('controlPlane');
}

export async function adminClient(): Promise<KubeClient> {
  return await createKubeClient({ kubeconfig: controlPlane().adminKubeconfig });
}

/** Kubeconfig path for a client-certificate user (CN = user, O = groups). */
export async function userKubeconfig(user: string, groups: string[] = []): Promise<string> {
  const q = groups.map((g) => `group=${encodeURIComponent(g)}`).join('&');
  const r = await fetch(`${controlPlane().controlUrl}/users/${encodeURIComponent(user)}?${q}`, {
    method: 'POST',
  });
  return ((await r.json()) as { kubeconfig: string }).kubeconfig;
}

export async function stopControllerManager(): Promise<void> {
  await fetch(`${controlPlane().controlUrl}/kcm/stop`, { method: 'POST' });
}
export async function startControllerManager(): Promise<void> {
  await fetch(`${controlPlane().controlUrl}/kcm/start`, { method: 'POST' });
}

let counter = 0;
/** Creates a namespace with a unique name and waits for its default ServiceAccount. */
export async function newNamespace(
  client: KubeClient,
  prefix = 'test',
  labels: Record<string, string> = {},
): Promise<string> {
  const name =
    `${prefix}-${process.pid.toString(36)}-${Date.now().toString(36)}-${(counter++).toString(36)}`.slice(
      0,
      63,
    );
  await client.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels },
  });
  await eventually(async () => {
    await client.get(`/api/v1/namespaces/${name}/serviceaccounts/default`);
  }, 15_000);
  return name;
}

/** Retries fn until it stops throwing or the timeout passes (then rethrows the last error). */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 10_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await fn();
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
  throw last;
}

/**
 * Checks `fn` again and again for `windowMs` (and once more at the end): a test that something does NOT happen
 * asserts it over the whole window, not once after a sleep. `reason` says why the window is long enough; it is part
 * of the failure message.
 */
export async function throughout(
  reason: string,
  windowMs: number,
  fn: () => Promise<void>,
  intervalMs = 200,
): Promise<void> {
  const end = Date.now() + windowMs;
  for (;;) {
    try {
      await fn();
    } catch (e) {
      throw new Error(`failed within the ${windowMs} ms window (${reason}): ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (Date.now() >= end) return;
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, end - Date.now()))));
  }
}
