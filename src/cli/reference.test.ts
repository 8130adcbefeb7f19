// docs/cli.md is checked against the command definitions: every command, alias and flag is documented.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { inspectionProgram, REFERENCE_FILE, updatedReference } from './reference.ts';

describe('docs/cli.md', () => {
  it('is up to date with the command tree (regenerate: npx tsx src/cli/reference.ts --write)', async () => {
    const current = fs.readFileSync(REFERENCE_FILE, 'utf8');
    expect(current).toBe(updatedReference(current, await inspectionProgram()));
  }, 60_000); // imports every capability (transformed on the fly): slow on a loaded machine
  it('documents every noun alias of the projects capability', () => {
    const doc = fs.readFileSync(REFERENCE_FILE, 'utf8');
    for (const alias of [
      '`serviceaccounts`',
      '`sa`',
      '`sas`',
      '`serviceaccounttokens`',
      '`sat`',
      '`sats`',
      '`projects`',
      '`roles`',
    ]) {
      expect(doc).toContain(alias);
    }
    for (const cmd of [
      '### lanyard grant',
      '### lanyard revoke',
      '### lanyard config set-credentials',
      '### lanyard doctor',
    ]) {
      expect(doc).toContain(cmd);
    }
    expect(doc).not.toContain('--token ');
  });
});
