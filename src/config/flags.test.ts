import { describe, expect, it } from 'vitest';
import { FlagError, parseFlags, wantsHelpOrVersion, type Flags } from './flags.ts';
import { controllerWantsHelp, parseControllerFlags } from './controller.ts';
import { parseWebhookFlags } from './webhook.ts';

interface T {
  name: string;
  n: number;
  on: boolean;
}
const FLAGS: Flags<T> = {
  name: { type: 'string', usage: 'a name', default: '""', set: (c, v) => (c.name = v) },
  n: { type: 'int', usage: 'a number', default: '0', shorthand: 'n', set: (c, v) => (c.n = Number(v)) },
  on: { type: 'bool', usage: 'a switch', default: 'false', set: (c, v) => (c.on = v === 'true') },
  help: { type: 'bool', usage: 'help', default: '', shorthand: 'h', set: () => {} },
  old: { type: 'bool', usage: '', default: '', singleDash: true },
};
const parse = (argv: string[], passThrough?: Set<string>) => {
  const t: T = { name: '', n: 0, on: false };
  const r = parseFlags(FLAGS, argv, t, { command: 'test', passThrough });
  return { t, ...r };
};

describe('the one pflag-compatible parser', () => {
  it('reads --flag=value, --flag value, bare booleans and shorthands in every pflag form', () => {
    expect(parse(['--name=a', '--on']).t).toEqual({ name: 'a', n: 0, on: true });
    expect(parse(['--name', 'b', '-n', '3']).t).toEqual({ name: 'b', n: 3, on: false });
    expect(parse(['-n=4']).t.n).toBe(4);
    expect(parse(['-n5']).t.n).toBe(5);
    expect(parse(['--on=false', '--on']).t.on).toBe(true);
  });
  it('stops at --, and reports compatibility flags as ignored once each', () => {
    const r = parse(['--name=a', '-old', '--old=false', '--', '--name=b', 'x']);
    expect(r.t.name).toBe('a');
    expect(r.ignored).toEqual(['old']);
    expect([...r.given]).toEqual(['name', 'old']);
  });
  it.each<[string[], string]>([
    [['x'], 'unexpected argument "x": lanyard test takes flags only'],
    [['--nope'], 'unknown flag: --nope'],
    [['-q'], 'unknown shorthand flag: "-q"'],
    [['-name=a'], 'unknown shorthand flag: "-name=a"'],
    [['--name'], 'flag needs an argument: --name'],
    [['--old=maybe'], 'invalid argument "maybe" for "--old": must be a boolean'],
  ])('%j fails with %j', (argv, message) => {
    expect(() => parse(argv)).toThrow(FlagError);
    expect(() => parse(argv)).toThrow(message);
  });
  it('hands pass-through flags back as given, guessing a value only when the next argument is not a flag', () => {
    expect(
      parse(['--port', '9443', '--gate', '--name=a', '--on'], new Set(['port', 'gate', 'on'])).rest,
    ).toEqual(['--port', '9443', '--gate', '--on']);
  });
  it('finds -h or --help before any value is checked', () => {
    expect(wantsHelpOrVersion(FLAGS, ['--name=a', '-h'], { command: 'test' })).toBe('help');
    expect(wantsHelpOrVersion(FLAGS, ['--help=false'], { command: 'test' })).toBeUndefined();
    expect(wantsHelpOrVersion(FLAGS, ['--name', '-h'], { command: 'test' })).toBeUndefined();
  });
});

describe('webhook and controller share the parser', () => {
  it('gives the controller -h and -v as the webhook has them', () => {
    expect(controllerWantsHelp(['-h'])).toBe(true);
    expect(controllerWantsHelp(['--help'])).toBe(true);
    expect(controllerWantsHelp(['--cluster-name=x'])).toBe(false);
    expect(parseControllerFlags(['--cluster-name=x', '-v', '4'], { env: {} }).config.logLevel).toBe('debug');
    expect(parseControllerFlags(['--cluster-name=x', '-v6'], { env: {} }).config.logLevel).toBe('trace');
    expect(parseWebhookFlags(['-v6'], { env: {}, readNamespaceFile: () => undefined }).logLevel).toBe(
      'trace',
    );
  });
  it('refuses a single-dash long flag in both, as pflag does', () => {
    expect(() => parseControllerFlags(['--cluster-name=x', '-leader-elect'], { env: {} })).toThrow(
      'unknown shorthand flag: "-leader-elect"',
    );
    expect(() => parseWebhookFlags(['-port=1'], { env: {}, readNamespaceFile: () => undefined })).toThrow(
      'unknown shorthand flag: "-port=1"',
    );
  });
});
