import { describe, expect, it } from 'vitest';
import { errorMessage } from './errors.ts';

describe('errorMessage', () => {
  it("returns an Error's message, not its name or stack", () => {
    expect(errorMessage(new TypeError('bad input'))).toBe('bad input');
    expect(errorMessage(new Error('outer', { cause: new Error('inner') }))).toBe('outer');
  });

  it('returns the message of a plain object that carries one, and the string form of anything else', () => {
    expect(errorMessage({ message: 'from a rejected fetch' })).toBe('from a rejected fetch');
    expect(errorMessage('thrown string')).toBe('thrown string');
    expect(errorMessage(42)).toBe('42');
    expect(errorMessage(undefined)).toBe('undefined');
    expect(errorMessage(null)).toBe('null');
  });

  it('does not throw on a value whose string conversion throws', () => {
    const hostile = {
      toString: () => {
        throw new Error('no');
      },
    };
    expect(errorMessage(hostile)).toBe('[object Object]');
    expect(errorMessage(Object.create(null))).toBe('[object Object]');
  });
});
