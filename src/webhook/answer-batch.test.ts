// AnswerBatch (docs/adr/0122-answers-written-per-turn.md): the answers decided in one turn are written together, in
// order, when the turn's flush runs; an answer that finds the batch older than the wait bound writes it at once; one
// answer that cannot be written does not hold back the others. The responses are recording stand-ins, the clock and
// the scheduler are the test's.
import { describe, expect, it } from 'vitest';
import type http from 'node:http';
import { AnswerBatch } from './server.ts';

interface Recorded {
  status?: number;
  headers?: Record<string, string | number>;
  body?: string;
}

function recordingResponse(log: string[], name: string, fail = false) {
  const rec: Recorded = {};
  const res = {
    writeHead(status: number, headers: Record<string, string | number>) {
      if (fail) throw new Error(`socket of ${name} is gone`);
      rec.status = status;
      rec.headers = headers;
    },
    end(body: string) {
      rec.body = body;
      log.push(`write ${name}`);
    },
  } as unknown as http.ServerResponse;
  return { res, rec };
}

function batchWithTestClock(maxWaitMs = 1) {
  let now = 0;
  const scheduled: Array<() => void> = [];
  const errors: unknown[] = [];
  const batch = new AnswerBatch({
    onError: (e) => errors.push(e),
    maxWaitMs,
    now: () => now,
    schedule: (fn) => scheduled.push(fn),
  });
  const runScheduled = () => scheduled.splice(0).forEach((fn) => fn());
  return { batch, scheduled, errors, runScheduled, advance: (ms: number) => (now += ms) };
}

describe('AnswerBatch', () => {
  it("writes nothing until the turn's flush runs, then every answer in the order decided", () => {
    const t = batchWithTestClock();
    const log: string[] = [];
    const a = recordingResponse(log, 'a');
    const b = recordingResponse(log, 'b');
    t.batch.send(a.res, 200, '{"a":1}', undefined, () => log.push('written a'));
    t.batch.send(b.res, 200, '{"b":2}', { connection: 'close' }, () => log.push('written b'));
    expect(log).toEqual([]);
    expect(t.scheduled).toHaveLength(1);
    t.runScheduled();
    expect(log).toEqual(['write a', 'written a', 'write b', 'written b']);
    expect(a.rec).toEqual({
      status: 200,
      headers: { 'content-type': 'application/json', 'content-length': 7 },
      body: '{"a":1}',
    });
    expect(b.rec.headers).toEqual({
      'content-type': 'application/json',
      'content-length': 7,
      connection: 'close',
    });
  });

  it('writes the batch at once when an answer finds its first one waiting for the bound', () => {
    const t = batchWithTestClock(1);
    const log: string[] = [];
    t.batch.send(recordingResponse(log, 'a').res, 200, '{}');
    t.advance(0.5);
    t.batch.send(recordingResponse(log, 'b').res, 200, '{}');
    expect(log).toEqual([]);
    t.advance(0.5);
    t.batch.send(recordingResponse(log, 'c').res, 200, '{}');
    expect(log).toEqual(['write a', 'write b', 'write c']);
    // The next answer starts a batch of its own, flushed by the turn.
    t.batch.send(recordingResponse(log, 'd').res, 200, '{}');
    expect(log).toHaveLength(3);
    t.runScheduled();
    expect(log).toEqual(['write a', 'write b', 'write c', 'write d']);
  });

  it('a flush with nothing queued writes nothing', () => {
    const t = batchWithTestClock();
    const log: string[] = [];
    t.batch.send(recordingResponse(log, 'a').res, 200, '{}');
    t.batch.flush();
    t.runScheduled();
    expect(log).toEqual(['write a']);
    expect(t.errors).toEqual([]);
  });

  it('reports an answer that cannot be written and writes the others', () => {
    const t = batchWithTestClock();
    const log: string[] = [];
    t.batch.send(recordingResponse(log, 'a').res, 200, '{}', undefined, () => log.push('written a'));
    t.batch.send(recordingResponse(log, 'gone', true).res, 200, '{}', undefined, () =>
      log.push('written gone'),
    );
    t.batch.send(recordingResponse(log, 'c').res, 200, '{}');
    t.runScheduled();
    expect(log).toEqual(['write a', 'written a', 'write c']);
    expect(t.errors).toHaveLength(1);
    expect(String(t.errors[0])).toContain('socket of gone is gone');
  });

  it('reports a failing `written` and still writes and counts the others', () => {
    const t = batchWithTestClock();
    const log: string[] = [];
    t.batch.send(recordingResponse(log, 'a').res, 200, '{}', undefined, () => {
      throw new Error('metrics registry broken');
    });
    t.batch.send(recordingResponse(log, 'b').res, 200, '{}', undefined, () => log.push('written b'));
    t.runScheduled();
    expect(log).toEqual(['write a', 'write b', 'written b']);
    expect(t.errors.map(String)).toEqual(['Error: metrics registry broken']);
  });
});
