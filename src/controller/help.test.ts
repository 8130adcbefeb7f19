import { describe, expect, it } from 'vitest';
import { CONTROLLER_FLAG_NAMES } from '../config/controller.ts';
import { CONTROLLER_FLAG_HELP, controllerHelp } from './help.ts';

describe('lanyard controller --help', () => {
  it('describes exactly the flags the parser accepts', () => {
    expect(Object.keys(CONTROLLER_FLAG_HELP).sort()).toEqual([...CONTROLLER_FLAG_NAMES].sort());
  });
  it('gives every flag a description and a default', () => {
    const lines = controllerHelp().split('\n').filter((l) => l.startsWith('  --'));
    expect(lines).toHaveLength(CONTROLLER_FLAG_NAMES.length);
    for (const l of lines) expect(l).toMatch(/^ {2}--[a-z-]+( [a-z]+)? +\S.* \(default .+\)$/);
    expect(controllerHelp()).toContain('--verify-deadline duration');
  });
});
