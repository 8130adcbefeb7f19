import { describe, expect, it } from 'vitest';
import { KubeApiError } from '../kube/client.ts';
import { describeRequest, toCliError, ApiCliError } from './errors.ts';
import { CliError } from './exit.ts';

const api = (status: number, method: string, path: string, reason = '', message = '') =>
  new KubeApiError(status, method, path, reason, message, undefined);

describe('describeRequest', () => {
  it.each([
    ['GET', '/api/v1/namespaces', { verb: 'list', resource: 'namespaces' }],
    ['GET', '/api/v1/namespaces/shop', { verb: 'get', resource: 'namespaces', name: 'shop' }],
    ['POST', '/api/v1/namespaces/shop/secrets', { verb: 'create', resource: 'secrets', namespace: 'shop' }],
    [
      'PUT',
      '/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings/dev',
      { verb: 'update', resource: 'rolebindings', namespace: 'shop', name: 'dev' },
    ],
    [
      'PATCH',
      '/apis/lanyard.dev/v1alpha1/namespaces/shop/promotions/p/status',
      { verb: 'patch', resource: 'promotions', namespace: 'shop', name: 'p', subresource: 'status' },
    ],
    [
      'DELETE',
      '/api/v1/namespaces/shop/secrets/t',
      { verb: 'delete', resource: 'secrets', namespace: 'shop', name: 't' },
    ],
  ])('%s %s', (method, path, info) => expect(describeRequest(method, path)).toMatchObject(info));
});

describe('toCliError', () => {
  const server = 'https://10.0.0.1:6443';
  it('builds the forbidden text from the request and the operation', () => {
    const e = toCliError(
      api(
        403,
        'POST',
        '/api/v1/namespaces/shop/secrets',
        'Forbidden',
        'secrets is forbidden: User "x" cannot create',
      ),
      {
        does: 'create serviceaccounttoken "ci-token"',
      },
      server,
    );
    expect(e.message).toBe(
      'forbidden: you may not create secrets in project "shop" (needed to create serviceaccounttoken "ci-token")',
    );
    expect(e.exitCode).toBe(4);
    expect((e as ApiCliError).serverDetail).toBe('server said: secrets is forbidden: User "x" cannot create');
  });
  it('recognises escalation refusals', () => {
    const marker =
      'user "mallory" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n{...}';
    expect(
      toCliError(
        api(
          403,
          'PUT',
          '/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings/lanyard-admin',
          'Forbidden',
          marker,
        ),
        { does: 'grant role "lanyard-admin"' },
        server,
      ).message,
    ).toBe(
      'forbidden: Kubernetes refused to update rolebinding "lanyard-admin" in project "shop" because it would grant permissions you do not hold yourself',
    );
    expect(
      toCliError(
        api(403, 'POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/shop/roles', 'Forbidden', marker),
        { does: 'create role "root"', object: { noun: 'role', name: 'root' } },
        server,
      ).message,
    ).toBe(
      'forbidden: Kubernetes refused to create role "root" in project "shop" because it would grant permissions you do not hold yourself',
    );
  });
  it('maps 401, 404, 409 and other statuses', () => {
    expect(toCliError(api(401, 'GET', '/api/v1/namespaces'), { does: 'x' }, server)).toMatchObject({
      exitCode: 4,
      message: expect.stringMatching(/^the API server rejected the credentials \(401\)/),
    });
    expect(
      toCliError(
        api(404, 'GET', '/api/v1/namespaces/shop/serviceaccounts/ci-bot', 'NotFound'),
        { does: 'x' },
        server,
      ),
    ).toMatchObject({ exitCode: 3, message: 'serviceaccount "ci-bot" not found in project "shop"' });
    expect(
      toCliError(
        api(409, 'POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/shop/roles', 'AlreadyExists'),
        { does: 'x', object: { noun: 'role', name: 'developer' } },
        server,
      ),
    ).toMatchObject({ exitCode: 5, message: 'role "developer" already exists in project "shop"' });
    expect(
      toCliError(
        api(500, 'GET', '/api/v1/namespaces/shop/secrets', 'InternalError', 'boom'),
        { does: 'list service account tokens' },
        server,
      ),
    ).toMatchObject({
      exitCode: 1,
      message:
        'cannot list service account tokens in project "shop": the API server answered 500 InternalError: boom',
    });
  });
  it('reports an unreachable server with the address', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:6443'), {
      code: 'ECONNREFUSED',
      syscall: 'connect',
    });
    expect(toCliError(err, { does: 'x' }, server)).toMatchObject({
      exitCode: 1,
      message: 'cannot reach the API server at https://10.0.0.1:6443: connect ECONNREFUSED',
    });
  });
  it('passes CliErrors through', () => {
    const e = new CliError('x', 5);
    expect(toCliError(e, { does: 'y' }, server)).toBe(e);
  });
});
