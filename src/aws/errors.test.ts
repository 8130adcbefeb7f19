import { describe, expect, it } from 'vitest';
import { AwsError, toAwsError } from './errors.ts';

// Shapes as the SDK v3 and Node produce them.
const sdk = (name: string, status: number, message = 'm', requestId = 'req-1') =>
  Object.assign(new Error(message), {
    name,
    $metadata: { httpStatusCode: status, requestId },
    $fault: status >= 500 ? 'server' : 'client',
  });

describe('toAwsError: code, HTTP status and whether a retry can help', () => {
  const rows: Array<[string, unknown, string, number, boolean]> = [
    ['409 adopt', sdk('ResourceInUseException', 409), 'ResourceInUseException', 409, false],
    ['role propagating', sdk('InvalidParameterException', 400), 'InvalidParameterException', 400, false],
    ['not found', sdk('ResourceNotFoundException', 404), 'ResourceNotFoundException', 404, false],
    ['access denied', sdk('AccessDeniedException', 403), 'AccessDeniedException', 403, false],
    ['limit', sdk('ResourceLimitExceededException', 400), 'ResourceLimitExceededException', 400, false],
    ['throttling restJson', sdk('ThrottlingException', 429), 'ThrottlingException', 429, true],
    ['throttling awsQuery (400)', sdk('Throttling', 400), 'Throttling', 400, true],
    ['server exception', sdk('ServerException', 500), 'ServerException', 500, true],
    ['503 without a modelled code', sdk('ServiceUnavailable', 503), 'ServiceUnavailable', 503, true],
    [
      'connection reset',
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      'ECONNRESET',
      0,
      true,
    ],
    [
      'connection refused',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      'ECONNREFUSED',
      0,
      true,
    ],
    [
      'SDK request timeout',
      Object.assign(new Error('timed out'), { name: 'TimeoutError' }),
      'TimeoutError',
      0,
      true,
    ],
    ['unknown http error', sdk('Error', 418), 'Http418', 418, false],
    ['not an error at all', undefined, 'UnknownError', 0, false],
  ];
  it.each(rows)('%s', (_n, input, code, status, retryable) => {
    const e = toAwsError(input, 'eks', 'Op');
    expect(e).toBeInstanceOf(AwsError);
    expect([e.code, e.httpStatus, e.retryable, e.service, e.operation]).toEqual([
      code,
      status,
      retryable,
      'eks',
      'Op',
    ]);
  });

  it('keeps the request id and describes itself for conditions and Events', () => {
    const e = toAwsError(
      sdk('ResourceInUseException', 409, 'Association already exists: a-0123456789abcdefg', 'rid-9'),
      'eks',
      'CreatePodIdentityAssociation',
    );
    expect(e.requestId).toBe('rid-9');
    expect(e.describe()).toBe(
      'ResourceInUseException: Association already exists: a-0123456789abcdefg (request id rid-9)',
    );
  });

  it('keeps the SDK error as its cause, so a logged AwsError carries the original stack', () => {
    const original = sdk('AccessDeniedException', 403);
    expect(toAwsError(original, 'eks', 'Op').cause).toBe(original);
  });

  it('returns an AwsError unchanged', () => {
    const e = new AwsError('x', 'C', 400, false, 'sts', 'Op');
    expect(toAwsError(e, 'other', 'Other')).toBe(e);
  });
});
