// One error type for every AWS failure, so callers classify by `code` and `retryable` without SDK types
// (docs/associations.md#what-the-controller-does: throttling, 5xx, timeouts and connection errors are retryable; the rest is not).
export class AwsError extends Error {
  override readonly name = 'AwsError';
  constructor(
    message: string,
    /** AWS error code (`ResourceInUseException`, `NoSuchEntity`, …) or a Node error code for connection errors. */
    readonly code: string,
    /** 0 when no HTTP answer arrived (timeout, reset, refused). */
    readonly httpStatus: number,
    readonly retryable: boolean,
    readonly service: string,
    readonly operation: string,
    readonly requestId?: string,
    /** The SDK, smithy or Node error this one stands for: logs show its stack (docs/adr/1030-errors-backoff-dependencies.md). */
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** `Code: message (request id …)`, the form Events and conditions carry. */
  describe(): string {
    return `${this.code}: ${this.message}${this.requestId ? ` (request id ${this.requestId})` : ''}`;
  }
}

export function isAwsError(e: unknown): e is AwsError {
  return e instanceof AwsError;
}

const THROTTLING_CODES = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'SlowDown',
  'PriorRequestNotComplete',
  'BandwidthLimitExceeded',
]);

const TRANSIENT_CODES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'AbortError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalServerError',
  'InternalServerException',
  'InternalFailure',
  'ServerException',
  'IDPCommunicationError',
]);

function isRetryable(code: string, httpStatus: number): boolean {
  return THROTTLING_CODES.has(code) || TRANSIENT_CODES.has(code) || httpStatus >= 500 || httpStatus === 429;
}

export function isThrottling(code: string, httpStatus: number): boolean {
  return THROTTLING_CODES.has(code) || httpStatus === 429;
}

interface SdkLikeError {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string };
  $response?: { statusCode?: number };
  cause?: unknown;
}

/** Maps an SDK, smithy or Node network error to AwsError. */
export function toAwsError(e: unknown, service: string, operation: string): AwsError {
  if (e instanceof AwsError) return e;
  const err = (e ?? {}) as SdkLikeError;
  const cause = (err.cause ?? {}) as SdkLikeError;
  const httpStatus = err.$metadata?.httpStatusCode ?? err.$response?.statusCode ?? 0;
  // Network failures carry a Node code (ECONNRESET) and a generic name (Error); AWS errors carry the code as name.
  let code = err.code ?? cause.code ?? err.Code ?? err.name ?? 'UnknownError';
  if (code === 'Error' || code === 'UnknownError') code = httpStatus ? `Http${httpStatus}` : 'UnknownError';
  const message = (err.message || cause.message || code).replace(/\s+/g, ' ').trim();
  return new AwsError(
    message,
    code,
    httpStatus,
    isRetryable(code, httpStatus),
    service,
    operation,
    err.$metadata?.requestId,
    { cause: e },
  );
}

/** A 200 answer that lacks what the call returns (`what`, e.g. "response carries no Arn"): not retryable. */
export function invalidResponse(what: string, service: string, operation: string): AwsError {
  return new AwsError(what, 'InvalidResponse', 200, false, service, operation);
}
