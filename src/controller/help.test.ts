import { describe, expect, it } from 'vitest';
import { CONTROLLER_FLAG_NAMES } from '../config/controller.ts';
import { controllerHelp } from './help.ts';
import { webhookHelp } from '../webhook/command.ts';
import { WEBHOOK_FLAG_NAMES } from '../config/webhook.ts';

const flagLines = (help: string) => help.split('\n').filter((l) => /^ {2}(-[a-z], )?--/.test(l));

describe('lanyard controller --help', () => {
  it('lists every flag the parser accepts, each once', () => {
    const named = flagLines(controllerHelp()).map((l) => /--([a-z-]+)/.exec(l)![1]);
    expect(named.sort()).toEqual([...CONTROLLER_FLAG_NAMES].sort());
  });
  it('gives every flag but --help a description and a default', () => {
    const lines = flagLines(controllerHelp());
    expect(lines).toHaveLength(CONTROLLER_FLAG_NAMES.length);
    for (const l of lines.filter((x) => !x.includes('--help ')))
      expect(l).toMatch(/^ {2}(-v, )?--[a-z-]+( [a-z]+)? +\S.* \(default .+\)$/);
    expect(controllerHelp()).toContain('--verify-deadline duration');
    expect(controllerHelp()).toMatch(/--promotion-timeout duration +default Stage timeout \(default 10m\)/);
    expect(controllerHelp()).toMatch(/-h, --help +print this help and exit\n/);
  });
});

describe('lanyard webhook --help', () => {
  it('lists every flag the parser accepts, klog ones on one line', () => {
    const help = webhookHelp();
    for (const f of WEBHOOK_FLAG_NAMES) expect(help).toContain(`--${f}`);
    expect(help).toMatch(/--read-timeout duration +TLS handshake.* \(default 10s\)/);
    expect(help).toMatch(/ {2}-v, --v int +klog verbosity/);
    expect(help).toMatch(
      /--logtostderr, --alsologtostderr, .*--one_output\n +accepted for compatibility \(klog\) and ignored/,
    );
  });
});
