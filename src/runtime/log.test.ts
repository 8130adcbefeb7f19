import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { BatchedLines, CENSOR, createLogger, redactLine } from './log.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, logger: createLogger({ component: 'test', destination: destination as never }) };
}

describe('log redaction', () => {
  it('returns a line of plain values as the same object, untouched', () => {
    const fields = {
      uid: 'u',
      namespace: 'ns',
      roleARN: 'arn:aws:iam::111122223333:role/x',
      ops: 3,
      gate: undefined,
    };
    expect(redactLine(fields)).toBe(fields);
  });

  it("censors sensitive keys at the top level and at any depth, without changing the caller's object", () => {
    const fields = {
      token: 'eyJhbGciOi',
      req: { headers: { authorization: 'Bearer abc', accept: 'json' } },
      creds: [{ SessionToken: 's', SecretAccessKey: 'k', AccessKeyId: 'AKIA' }],
      secret: { data: { token: 'x' } },
    };
    const out = redactLine(fields) as typeof fields;
    expect(out).toEqual({
      token: CENSOR,
      req: { headers: { authorization: CENSOR, accept: 'json' } },
      creds: [{ SessionToken: CENSOR, SecretAccessKey: CENSOR, AccessKeyId: 'AKIA' }],
      secret: { data: CENSOR },
    });
    expect(fields.req.headers.authorization).toBe('Bearer abc');
  });

  it('censors sensitive properties carried by an Error and keeps its message', () => {
    const err = Object.assign(new Error('request failed'), { credentials: { sessionToken: 't' } });
    const out = redactLine({ err }) as { err: Record<string, unknown> };
    expect(out.err).toMatchObject({ type: 'Error', message: 'request failed', credentials: CENSOR });
  });

  it('writes a logged error with its message, stack and cause (the `err` convention, docs/adr/1030-errors-backoff-dependencies.md)', () => {
    const { lines, logger } = capture();
    const cause = new Error('connect ECONNREFUSED 127.0.0.1:6443');
    logger.warn({ err: new Error('watch of pods failed', { cause }) }, 'retrying');
    logger.flush();
    const err = lines[0]!.err as { type: string; message: string; stack: string };
    expect(err.type).toBe('Error');
    expect(err.message).toBe('watch of pods failed: connect ECONNREFUSED 127.0.0.1:6443');
    expect(err.stack).toMatch(/^Error: watch of pods failed\n\s+at /);
    expect(err.stack).toContain('caused by: Error: connect ECONNREFUSED 127.0.0.1:6443');
  });

  it('keeps the stack and cause of an error whose properties had to be censored', () => {
    const { lines, logger } = capture();
    const err = Object.assign(new Error('exchange failed', { cause: new Error('socket hang up') }), {
      response: { Credentials: { SessionToken: 'IQoJsecret' } },
    });
    logger.warn({ err }, 'exchange');
    logger.flush();
    expect(JSON.stringify(lines)).not.toContain('IQoJsecret');
    expect(lines[0]!.err).toMatchObject({
      message: 'exchange failed: socket hang up',
      stack: expect.stringMatching(/^Error: exchange failed\n\s+at [^]*caused by: Error: socket hang up/),
      response: { Credentials: CENSOR },
    });
  });

  it('writes no secret through a real logger, whatever the line carries', () => {
    const { lines, logger } = capture();
    logger.info({ uid: 'u1', ops: 2 }, 'Pod mutated');
    logger.warn({ response: { Credentials: { SessionToken: 'IQoJb3JpZ2luX2Vj' } } }, 'exchange');
    logger.flush();
    expect(lines[0]).toMatchObject({
      level: 'info',
      component: 'test',
      uid: 'u1',
      ops: 2,
      msg: 'Pod mutated',
    });
    expect(Math.abs(Date.parse(lines[0]!.time as string) - Date.now())).toBeLessThan(60_000);
    expect(lines[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(JSON.stringify(lines)).not.toContain('IQoJb3JpZ2luX2Vj');
    expect(lines[1]).toMatchObject({ response: { Credentials: CENSOR } });
  });
});

describe('log lines batched before they are written (docs/adr/0120-webhook-log-batching.md)', () => {
  function sink() {
    const writes: string[] = [];
    const events: string[] = [];
    return {
      writes,
      events,
      write: (t: string) => writes.push(t),
      flushSync: () => events.push('sink flushSync'),
    };
  }

  it('hands every line logged before the scheduled write to the sink as one write, in order', () => {
    const s = sink();
    const scheduled: Array<() => void> = [];
    const lines = new BatchedLines(s, { schedule: (fn) => scheduled.push(fn) });
    lines.write('a\n');
    lines.write('b\n');
    lines.write('c\n');
    expect(s.writes).toEqual([]);
    expect(scheduled).toHaveLength(1);
    scheduled[0]!();
    expect(s.writes).toEqual(['a\nb\nc\n']);
    lines.write('d\n');
    expect(scheduled).toHaveLength(2);
    scheduled[1]!();
    expect(s.writes).toEqual(['a\nb\nc\n', 'd\n']);
  });

  it("writes pending lines synchronously at exit, after the sink's own buffer", () => {
    const s = sink();
    const written: string[] = [];
    const lines = new BatchedLines(s, {
      schedule: () => {},
      writeSync: (t) => {
        s.events.push('pending written');
        written.push(t);
      },
    });
    lines.write('last\n');
    lines.write('words\n');
    lines.flushSync();
    expect(s.events).toEqual(['sink flushSync', 'pending written']);
    expect(written).toEqual(['last\nwords\n']);
    lines.flushSync();
    expect(written).toHaveLength(1);
  });

  it('still writes the pending lines at exit when the sink was already closed', () => {
    const written: string[] = [];
    const closed = {
      write: () => {
        throw new Error('SonicBoom destroyed');
      },
      flushSync: () => {
        throw new Error('SonicBoom destroyed');
      },
    };
    const lines = new BatchedLines(closed, { schedule: () => {}, writeSync: (t) => written.push(t) });
    lines.write('bye\n');
    lines.flushSync();
    expect(written).toEqual(['bye\n']);
  });

  it('writes on its own timer, within LOG_BATCH_MS, when nothing else flushes', async () => {
    const s = sink();
    const lines = new BatchedLines(s);
    lines.write('x\n');
    await new Promise((r) => setTimeout(r, 200));
    expect(s.writes).toEqual(['x\n']);
  });
});
