// The simulator's service logic driven directly (no SDK), with tokens signed here by jose and served by a local
// issuer, to reach cases a real API server cannot produce on demand: expired and not-yet-valid tokens, key
// rotation, wrong issuers; plus EKS limits and visibility of updates and deletes.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { silentLogger } from '../../../src/runtime/log.ts';
import { AwsSim } from '../../../src/sandbox/aws-sim/sim.ts';
import { SimError } from '../../../src/sandbox/aws-sim/model.ts';

const PODS_TRUST = JSON.stringify({
  Statement: [
    {
      Effect: 'Allow',
      Principal: { Service: 'pods.eks.amazonaws.com' },
      Action: ['sts:AssumeRole', 'sts:TagSession'],
    },
  ],
});

let issuer = '';
let server: http.Server;
const keys: Array<{
  kid: string;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  jwk: JWK;
}> = [];
let jwksFetches = 0;

async function addKey(kid: string) {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  keys.push({ kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } });
}

async function token(
  o: {
    kid?: string;
    sub?: string;
    aud?: string;
    iss?: string;
    exp?: number;
    nbf?: number;
    pod?: boolean;
  } = {},
) {
  const k = keys.find((x) => x.kid === (o.kid ?? keys[0]!.kid))!;
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({
    ...(o.pod === false
      ? {}
      : {
          'kubernetes.io': {
            namespace: 'ns',
            pod: { name: 'web-1', uid: 'u-1' },
            serviceaccount: { name: 'sa', uid: 'u-2' },
          },
        }),
  })
    .setProtectedHeader({ alg: 'RS256', kid: k.kid })
    .setIssuer(o.iss ?? issuer)
    .setSubject(o.sub ?? 'system:serviceaccount:ns:sa')
    .setAudience(o.aud ?? 'pods.eks.amazonaws.com')
    .setIssuedAt(now - 10)
    .setExpirationTime(o.exp ?? now + 600);
  if (o.nbf !== undefined) jwt.setNotBefore(o.nbf);
  return jwt.sign(k.privateKey);
}

function newSim(seed = 1) {
  const sim = new AwsSim({
    seed,
    account: '123456789012',
    region: 'us-west-2',
    partition: 'aws',
    log: silentLogger(),
  });
  sim.registerCluster({ name: 'c1', issuer });
  return sim;
}

async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if (e instanceof SimError) return `${e.code} ${e.status}`;
    throw e;
  }
  return 'OK';
}

beforeAll(async () => {
  await addKey('k1');
  server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration')
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/keys` }));
    else if (req.url === '/keys') {
      jwksFetches++;
      res.end(JSON.stringify({ keys: keys.map((k) => k.jwk) }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

describe('eks-auth token checks', () => {
  it('accepts a valid Pod-bound token and refuses expired, future, foreign, unbound and non-SA tokens', async () => {
    const sim = newSim();
    const now = Date.now();
    const role = sim.createRole({ roleName: 'app', path: '/team/', document: PODS_TRUST }, now);
    const a = sim.createAssociation('c1', { namespace: 'ns', serviceAccount: 'sa', roleArn: role.arn }, now);
    const ok = await sim.assumeRoleForPodIdentity('c1', await token(), Date.now());
    expect(ok.assumedRoleUser.arn).toMatch(
      /^arn:aws:sts::123456789012:assumed-role\/app\/eks-c1-web-1-[0-9a-f-]{36}$/,
    );
    expect(ok.podIdentityAssociation.associationId).toBe(a.associationId);
    const t = Math.floor(Date.now() / 1000);
    expect(await code(sim.assumeRoleForPodIdentity('c1', await token({ exp: t - 60 }), Date.now()))).toBe(
      'ExpiredTokenException 400',
    );
    expect(await code(sim.assumeRoleForPodIdentity('c1', await token({ nbf: t + 600 }), Date.now()))).toBe(
      'InvalidTokenException 400',
    );
    expect(
      await code(
        sim.assumeRoleForPodIdentity('c1', await token({ iss: 'https://other.example.com' }), Date.now()),
      ),
    ).toBe('InvalidTokenException 400');
    expect(
      await code(sim.assumeRoleForPodIdentity('c1', await token({ aud: 'sts.amazonaws.com' }), Date.now())),
    ).toBe('InvalidTokenException 400');
    expect(await code(sim.assumeRoleForPodIdentity('c1', await token({ pod: false }), Date.now()))).toBe(
      'InvalidTokenException 400',
    );
    expect(await code(sim.assumeRoleForPodIdentity('c1', await token({ sub: 'alice' }), Date.now()))).toBe(
      'InvalidTokenException 400',
    );
    expect(
      await code(
        sim.assumeRoleForPodIdentity(
          'c1',
          await token({ sub: 'system:serviceaccount:ns:other' }),
          Date.now(),
        ),
      ),
    ).toBe('ResourceNotFoundException 404');
  });

  it('caches keys and refetches once on an unknown kid (rotation)', async () => {
    const sim = newSim();
    const now = Date.now();
    const role = sim.createRole({ roleName: 'app', document: PODS_TRUST }, now);
    sim.createAssociation('c1', { namespace: 'ns', serviceAccount: 'sa', roleArn: role.arn }, now);
    const before = jwksFetches;
    await sim.assumeRoleForPodIdentity('c1', await token(), Date.now());
    await sim.assumeRoleForPodIdentity('c1', await token(), Date.now());
    expect(jwksFetches - before).toBe(1);
    await addKey('k2');
    expect(
      (await sim.assumeRoleForPodIdentity('c1', await token({ kid: 'k2' }), Date.now())).subject,
    ).toEqual({ namespace: 'ns', serviceAccount: 'sa' });
    expect(jwksFetches - before).toBe(2);
  });
});

describe('visibility of updates and deletes', () => {
  it('eks-auth sees the old role until the update is visible, and the association until the delete is', async () => {
    const sim = newSim(3);
    const t0 = Date.now();
    const r1 = sim.createRole({ roleName: 'one', document: PODS_TRUST }, t0);
    const r2 = sim.createRole({ roleName: 'two', document: PODS_TRUST }, t0);
    const a = sim.createAssociation('c1', { namespace: 'ns', serviceAccount: 'sa', roleArn: r1.arn }, t0);
    sim.configure({ visibility: { eksAuth: [60_000, 60_000], 'eks.describe': [0, 0] } });
    sim.updateAssociation('c1', a.associationId, { roleArn: r2.arn }, Date.now());
    expect(sim.describeAssociation('c1', a.associationId, Date.now()).roleArn).toBe(r2.arn);
    expect(
      (await sim.assumeRoleForPodIdentity('c1', await token(), Date.now())).assumedRoleUser.arn,
    ).toContain('assumed-role/one/');
    expect(
      (await sim.assumeRoleForPodIdentity('c1', await token(), Date.now() + 61_000)).assumedRoleUser.arn,
    ).toContain('assumed-role/two/');
    sim.makeVisible(a.associationId, Date.now());
    sim.deleteAssociation('c1', a.associationId, Date.now());
    expect(await code(() => sim.describeAssociation('c1', a.associationId, Date.now()))).toBe(
      'ResourceNotFoundException 404',
    );
    expect(
      (await sim.assumeRoleForPodIdentity('c1', await token(), Date.now())).assumedRoleUser.arn,
    ).toContain('assumed-role/two/');
    expect(await code(sim.assumeRoleForPodIdentity('c1', await token(), Date.now() + 61_000))).toBe(
      'ResourceNotFoundException 404',
    );
    // The pair is free again at once for a new association (the 409 check reads the latest state).
    expect(
      sim.createAssociation('c1', { namespace: 'ns', serviceAccount: 'sa', roleArn: r1.arn }, Date.now())
        .associationId,
    ).not.toBe(a.associationId);
  });

  it('draws delays from the seed: the same seed gives the same visibleAt offsets', () => {
    const offsets = (seed: number) => {
      const sim = newSim(seed);
      const t = 1_000_000;
      sim.configure({ visibility: { eksAuth: [0, 20_000], 'eks.list': [0, 2000] } });
      const r = sim.createRole({ roleName: 'x', document: PODS_TRUST }, t);
      return Array.from({ length: 5 }, (_, i) => {
        const a = sim.createAssociation(
          'c1',
          { namespace: 'ns', serviceAccount: `s${i}`, roleArn: r.arn },
          t,
        );
        const v = sim.associationView(a.associationId)!.visibleAt;
        return [Date.parse(v.eksAuth!) - t, Date.parse(v['eks.list']!) - t];
      });
    };
    expect(offsets(5)).toEqual(offsets(5));
    expect(offsets(5)).not.toEqual(offsets(6));
    for (const [e, l] of offsets(5)) {
      expect(e).toBeGreaterThanOrEqual(0);
      expect(e).toBeLessThanOrEqual(20_000);
      expect(l).toBeLessThanOrEqual(2000);
    }
  });
});

describe('EKS limits and validation', () => {
  it('allows 5000 associations per cluster, then ResourceLimitExceededException; deletes free a slot', async () => {
    const sim = newSim();
    const t = Date.now();
    const r = sim.createRole({ roleName: 'x', document: PODS_TRUST }, t);
    let first = '';
    for (let i = 0; i < 5000; i++) {
      const a = sim.createAssociation('c1', { namespace: 'ns', serviceAccount: `s${i}`, roleArn: r.arn }, t);
      if (i === 0) first = a.associationId;
    }
    await expect(
      code(() =>
        sim.createAssociation('c1', { namespace: 'ns', serviceAccount: 'one-more', roleArn: r.arn }, t),
      ),
    ).resolves.toBe('ResourceLimitExceededException 400');
    sim.deleteAssociation('c1', first, t);
    expect(
      sim.createAssociation('c1', { namespace: 'ns', serviceAccount: 'one-more', roleArn: r.arn }, t)
        .serviceAccount,
    ).toBe('one-more');
  });

  it('pages List with maxResults 1-100 and validates it', async () => {
    const sim = newSim();
    const t = Date.now();
    const r = sim.createRole({ roleName: 'x', document: PODS_TRUST }, t);
    for (let i = 0; i < 5; i++)
      sim.createAssociation('c1', { namespace: 'ns', serviceAccount: `s${i}`, roleArn: r.arn }, t);
    const p1 = sim.listAssociations('c1', { maxResults: '2' }, t);
    const p2 = sim.listAssociations('c1', { maxResults: '2', nextToken: p1.nextToken! }, t);
    const p3 = sim.listAssociations('c1', { maxResults: '2', nextToken: p2.nextToken! }, t);
    expect([...p1.items, ...p2.items, ...p3.items].map((a) => a.serviceAccount)).toEqual([
      's0',
      's1',
      's2',
      's3',
      's4',
    ]);
    expect(p3.nextToken).toBeUndefined();
    expect(await code(() => sim.listAssociations('c1', { maxResults: '0' }, t))).toBe(
      'InvalidParameterException 400',
    );
    expect(await code(() => sim.listAssociations('c1', { maxResults: '101' }, t))).toBe(
      'InvalidParameterException 400',
    );
  });

  it('refuses bad configuration naming the field', async () => {
    const sim = newSim();
    expect(await code(() => sim.configure({ visibility: { nope: [0, 1] } }))).toBe('InvalidConfig 400');
    expect(
      await code(() => sim.configure({ faults: [{ service: 'eks', operation: '*', error: 'Boom' }] })),
    ).toBe('InvalidConfig 400');
    expect(
      await code(() =>
        sim.configure({ faults: [{ service: 'eks', operation: '*', rate: 2, error: 'timeout' }] }),
      ),
    ).toBe('InvalidConfig 400');
  });

  it('fires count faults exactly N times and rate faults by the seed', () => {
    const sim = newSim(9);
    sim.configure({
      faults: [
        { service: 'sts', operation: 'Assume*', error: 'ServiceUnavailable', count: 2 },
        { service: 'eks', operation: '*', error: 'ThrottlingException', rate: 0.5 },
      ],
    });
    expect([1, 2, 3].map(() => sim.drawFaults('sts', 'AssumeRoleWithWebIdentity').error)).toEqual([
      'ServiceUnavailable',
      'ServiceUnavailable',
      undefined,
    ]);
    expect(sim.drawFaults('sts', 'GetCallerIdentity').error).toBeUndefined();
    const hits = Array.from(
      { length: 1000 },
      () => sim.drawFaults('eks', 'DescribePodIdentityAssociation').error,
    ).filter(Boolean).length;
    expect(hits).toBeGreaterThan(400);
    expect(hits).toBeLessThan(600);
  });
});
