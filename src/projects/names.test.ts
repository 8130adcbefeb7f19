import { describe, expect, it } from 'vitest';
import { nameError, reservedRoleError } from './names.ts';

describe('nameError', () => {
  it.each(['shop', 'a', 'a1-b2', 'x'.repeat(63)])('accepts project %s', (n) =>
    expect(nameError('project', n)).toBeUndefined(),
  );
  it.each(['Shop', '-shop', 'shop-', 'a.b', 'x'.repeat(64), '', 'sh_op'])('refuses project %j', (n) =>
    expect(nameError('project', n)).toBe(
      `invalid project name "${n}": use at most 63 lowercase letters, digits or "-", starting and ending with a letter or digit`,
    ),
  );
  it.each(['ci-bot', 'a.b.c', 'x'.repeat(253), '0'])('accepts serviceaccount %s', (n) =>
    expect(nameError('serviceaccount', n)).toBeUndefined(),
  );
  it.each(['My_SA', 'a..b', '.a', 'a.', 'a.-b', 'x'.repeat(254), ''])('refuses serviceaccount %j', (n) =>
    expect(nameError('serviceaccount', n)).toBe(
      `invalid serviceaccount name "${n}": use at most 253 lowercase letters, digits, "-" or ".", starting and ending with a letter or digit`,
    ),
  );
  it('names the kind in the message', () => {
    expect(nameError('serviceaccounttoken', 'X')).toMatch(/^invalid serviceaccounttoken name "X"/);
    expect(nameError('role', 'X')).toMatch(/^invalid role name "X"/);
  });
  it('reserves the lanyard- prefix for built-in roles', () => {
    expect(reservedRoleError('lanyard-admin')).toBe(
      'invalid role name "lanyard-admin": names starting with "lanyard-" are reserved for built-in roles',
    );
    expect(reservedRoleError('lanyardish')).toBeUndefined();
  });
});
