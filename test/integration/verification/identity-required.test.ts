// Opt-in "identity required" (docs/adr/0920-identity-required.md, docs/verified-start.md): under the label
// lanyard.dev/identity-required on a Namespace or a Pod, a Pod whose identity cannot be resolved is refused by the real
// API server with the webhook's 403, naming the ServiceAccount and what is missing; without it, or with the Pod's own
// label "false", it is admitted as before. The namespace label is read from the webhook's namespace cache: no API call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../harness/context.ts';
import { KubeApiError } from '../../../src/kube/client.ts';
import { createPod, podBody, serviceAccount, startVerificationEnv, type VerificationEnv } from './env.ts';

let env: VerificationEnv;
const LABEL = 'lanyard.dev/identity-required';

const refusal = async (p: Promise<unknown>): Promise<KubeApiError> => {
  try {
    await p;
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 403) return e;
    throw e;
  }
  throw new Error('expected the create to be refused');
};

/**
 * Creates Pods `<base>-0`, `<base>-1`, ... until one is refused with 403: the webhook's namespace cache sees a new
 * namespace or label a moment after the API server does. Returns the refusal and the name refused.
 */
async function refusedPod(
  ns: string,
  sa: string,
  base: string,
  labels?: Record<string, string>,
): Promise<{ e: KubeApiError; name: string }> {
  let n = 0;
  return eventually(
    async () => {
      const name = `${base}-${n++}`;
      const body = podBody(name, sa);
      if (labels) body.metadata.labels = labels;
      return { e: await refusal(createPod(env.admin, ns, body)), name };
    },
    15_000,
    200,
  );
}

beforeAll(async () => {
  env = await startVerificationEnv({ seed: 920, controller: false });
});
afterAll(async () => {
  await env?.stop();
});

describe('identity required', () => {
  it('refuses, through the API server, a Pod of an un-annotated ServiceAccount in a labelled namespace (403 naming the ServiceAccount and the missing sources)', async () => {
    const ns = await env.namespace('req', { [LABEL]: 'true' });
    await serviceAccount(env.admin, ns, 'plain');
    const { e, name } = await refusedPod(ns, 'plain', 'web');
    expect(e.status).toBe(403);
    expect(e.serverMessage).toBe(
      `admission webhook "pod-identity.lanyard.dev" denied the request: lanyard: Pod "${ns}/${name}" requires an AWS identity ` +
        `(label ${LABEL}="true" on namespace "${ns}"), but ServiceAccount "${ns}/plain" has no identity: no eks.amazonaws.com/role-arn annotation, ` +
        'no PodIdentityAssociation. Annotate the ServiceAccount with eks.amazonaws.com/role-arn or create a PodIdentityAssociation for it, ' +
        `or label the Pod ${LABEL}=false (docs/verified-start.md)`,
    );
    // The decision reads the namespace from the webhook's cache (docs/webhook.md#serviceaccounts-that-are-not-cached-yet): no API request per admission.
    const before = env.webhookRequests();
    expect((await refusedPod(ns, 'plain', 'again')).name).toBe('again-0');
    expect(env.webhookRequests()).toBe(before);
  });

  it('admits, mutated and gated, a Pod whose ServiceAccount declares a role in the same namespace', async () => {
    const ns = await env.namespace('req-ok', { [LABEL]: 'true' });
    await serviceAccount(env.admin, ns, 'uploader', {
      'eks.amazonaws.com/role-arn': `arn:aws:iam::${env.account}:role/uploader`,
    });
    const pod = await eventually(() => createPod(env.admin, ns, podBody('web', 'uploader')), 15_000, 200);
    expect(pod.spec.containers[0].env.map((v: { name: string }) => v.name)).toContain('AWS_ROLE_ARN');
    expect(pod.spec.schedulingGates).toEqual([{ name: 'lanyard.dev/identity' }]);
  });

  it('a Pod labelled "false" is admitted without an identity in a labelled namespace; a Pod labelled "true" is refused in an unlabelled one', async () => {
    const required = await env.namespace('req-off', { [LABEL]: 'true' });
    await serviceAccount(env.admin, required, 'plain');
    const exempt = await eventually(
      () =>
        createPod(env.admin, required, {
          ...podBody('debug', 'plain'),
          metadata: { name: 'debug', labels: { [LABEL]: 'false' } },
        }),
      15_000,
      200,
    );
    expect(exempt.spec.containers[0].env).toBeUndefined();

    const open = await env.namespace('req-pod');
    await serviceAccount(env.admin, open, 'plain');
    expect((await createPod(env.admin, open, podBody('free', 'plain'))).spec.schedulingGates).toBeUndefined();
    const e = await refusal(
      createPod(env.admin, open, {
        ...podBody('strict', 'plain'),
        metadata: { name: 'strict', labels: { [LABEL]: 'true' } },
      }),
    );
    expect(e.serverMessage).toContain(
      `lanyard: Pod "${open}/strict" requires an AWS identity (label ${LABEL}="true" on the Pod), but ServiceAccount "${open}/plain" has no identity`,
    );
  });

  it('labelling a namespace later takes effect for its next Pod', async () => {
    const ns = await env.namespace('req-late');
    await serviceAccount(env.admin, ns, 'plain');
    await createPod(env.admin, ns, podBody('before', 'plain'));
    await env.admin.patch(
      `/api/v1/namespaces/${ns}`,
      { metadata: { labels: { [LABEL]: 'true' } } },
      'application/merge-patch+json',
    );
    const { e } = await refusedPod(ns, 'plain', 'after');
    expect(e.serverMessage).toContain(`ServiceAccount "${ns}/plain" has no identity`);
  });

  it('a label value other than "true" or "false" is refused, naming the namespace, the label and the rule', async () => {
    const ns = await env.namespace('req-bad', { [LABEL]: 'yes' });
    await serviceAccount(env.admin, ns, 'plain');
    const { e } = await refusedPod(ns, 'plain', 'web');
    expect(e.serverMessage).toContain(
      `namespace "${ns}" has label ${LABEL}="yes"; the value must be "true" or "false"`,
    );
  });
});
