import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger, logPreformatted } from '../runtime/log.ts';
import { mutatedPodFields, type MutatedPodLine } from './mutation-line.ts';

/** A real logger writing raw lines into an array, the time field blanked so two lines can be compared byte for byte. */
function rawLines(level = 'info') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split(/(?<=\n)/));
      cb();
    },
  });
  const logger = createLogger({ component: 'webhook', level, destination: destination as never });
  const blanked = () => lines.map((l) => l.replace(/"time":"[^"]*"/, '"time":"-"'));
  return { logger, blanked };
}

/** The object src/webhook/admission.ts logged through pino before docs/adr/0121, keys in its order. */
const asLogged = (l: MutatedPodLine) => ({
  uid: l.uid,
  namespace: l.namespace,
  pod: l.pod,
  serviceAccount: l.serviceAccount,
  mode: l.mode,
  source: l.source,
  roleARN: l.roleARN,
  gate: l.gate,
  ops: l.ops,
  durationMs: l.durationMs,
});

const base: MutatedPodLine = {
  uid: '4b5e3d84-2a4f-4c4e-9d6a-7b1f0c2e9a11',
  namespace: 'shop',
  pod: 'web-7d9f-',
  serviceAccount: 'web',
  mode: 'WebIdentity',
  source: 'service_account',
  roleARN: 'arn:aws:iam::111122223333:role/web',
  ops: 10,
  durationMs: 0.047,
};

describe('the mutated Pod line, preformatted (docs/adr/0121-mutation-line-preformatted.md)', () => {
  const cases: Array<[string, MutatedPodLine]> = [
    ['every field', base],
    [
      'with the gate and no role (container credentials)',
      {
        ...base,
        roleARN: undefined,
        gate: 'lanyard.dev/identity',
        mode: 'ContainerCredentials',
        source: 'association',
      },
    ],
    [
      'strings that need escaping',
      { ...base, pod: 'we"b\\x', serviceAccount: 'a\nb\tc\u0001', namespace: 'ünï-✓-😀' },
    ],
    [
      'a string longer than pino escapes by hand',
      { ...base, roleARN: `arn:aws:iam::111122223333:role/${'p/'.repeat(60)}r"x` },
    ],
    ['a whole-millisecond duration and no ops', { ...base, ops: 0, durationMs: 3 }],
  ];
  for (const [title, line] of cases)
    it(`is byte for byte the line pino writes for the same object: ${title}`, () => {
      const { logger, blanked } = rawLines();
      logger.info(asLogged(line), 'Pod mutated');
      logPreformatted(logger, 'info', mutatedPodFields(line), 'Pod mutated');
      logger.flush();
      const [fromPino, preformatted] = blanked();
      expect(preformatted).toBe(fromPino);
      expect(JSON.parse(preformatted!)).toMatchObject({
        level: 'info',
        component: 'webhook',
        msg: 'Pod mutated',
        uid: line.uid,
      });
    });

  it("carries a child logger's bindings after the time, as pino does", () => {
    const { logger, blanked } = rawLines();
    const child = logger.child({ replica: 'b' });
    child.info(asLogged(base), 'Pod mutated');
    logPreformatted(child, 'info', mutatedPodFields(base), 'Pod mutated');
    logger.flush();
    const [fromPino, preformatted] = blanked();
    expect(preformatted).toBe(fromPino);
    expect(preformatted).toContain('"component":"webhook","replica":"b","uid"');
  });

  it('writes nothing when the level is above info', () => {
    const { logger, blanked } = rawLines('warn');
    logPreformatted(logger, 'info', mutatedPodFields(base), 'Pod mutated');
    logger.warn('marker');
    logger.flush();
    expect(blanked()).toHaveLength(1);
    expect(blanked()[0]).toContain('"msg":"marker"');
  });

  it('writes a time pino would write: ISO 8601 with milliseconds, now', () => {
    const lines: string[] = [];
    const destination = new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) });
    const own = createLogger({ component: 'webhook', destination: destination as never });
    logPreformatted(own, 'info', mutatedPodFields(base), 'Pod mutated');
    own.flush();
    const { time } = JSON.parse(lines[0]!) as { time: string };
    expect(time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Math.abs(Date.parse(time) - Date.now())).toBeLessThan(60_000);
  });
});
