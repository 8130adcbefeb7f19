import { describe, expect, it } from 'vitest';
import { compileCacheDir } from './compile-cache.ts';

describe('the compile cache directory (docs/adr/0704)', () => {
  it("is under the user's cache: XDG_CACHE_HOME, else ~/.cache", () => {
    expect(compileCacheDir({ HOME: '/home/a' })).toBe('/home/a/.cache/lanyard/compile-cache');
    expect(compileCacheDir({ HOME: '/home/a', XDG_CACHE_HOME: '/x' })).toBe('/x/lanyard/compile-cache');
  });
  it("leaves Node's default when NODE_COMPILE_CACHE names one or there is no home", () => {
    expect(compileCacheDir({ HOME: '/home/a', NODE_COMPILE_CACHE: '/c' })).toBeUndefined();
    expect(compileCacheDir({})).toBeUndefined();
  });
});
