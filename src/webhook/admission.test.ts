import { describe, expect, it } from 'vitest';
import { timeoutParamMs } from './admission.ts';

describe("the API server's timeout parameter", () => {
  it.each([
    ['timeout=10s', 10_000],
    ['timeout=30s&x=1', 30_000],
    ['x=1&timeout=5s', 5000],
    ['timeout=5s&timeout=7s', 5000],
  ])('%s is %d ms', (query, ms) => expect(timeoutParamMs(query)).toBe(ms));

  it.each([
    '',
    'timeout=',
    'timeout=10',
    'timeout=10ms',
    'timeout=1.5s',
    'timeout=10sx',
    'xtimeout=10s',
    'timeout=abc&timeout=10s',
  ])('%j gives none: the lookup waits without the API server bound', (query) =>
    expect(timeoutParamMs(query)).toBeUndefined(),
  );
});
