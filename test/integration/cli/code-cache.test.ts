// The launcher's V8 code cache (bin/code-cache.js, docs/adr/0709-one-bundle-and-a-code-cache.md), through the shipped
// bin/lanyard.js: written at the first run of a command, left alone by later runs of it, extended by a new command,
// replaced when damaged, and never needed: an unwritable cache directory changes nothing a user sees.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript launcher without type declarations
import { cacheName, codeCacheDir, commandKey } from '../../../bin/code-cache.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

function lanyard(argv: string[], cacheHome: string) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'lanyard.js'), ...argv], {
    env: { PATH: process.env.PATH ?? '', HOME: cacheHome, XDG_CACHE_HOME: cacheHome },
    encoding: 'utf8',
  });
  return { exitCode: r.status, stdout: r.stdout, stderr: r.stderr };
}

const cacheDir = (cacheHome: string) => path.join(cacheHome, 'lanyard', 'code-cache');

const cacheFiles = (cacheHome: string) => {
  const dir = cacheDir(cacheHome);
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
};

/** The path of the cache's one file ending in `ext` (`.bin`: the cached code, `.json`: the commands it holds). */
const cacheFile = (cacheHome: string, ext: '.bin' | '.json') =>
  path.join(
    cacheDir(cacheHome),
    cacheFiles(cacheHome).find((f) => f.endsWith(ext))!,
  );

describe('the launcher code cache', () => {
  it('names the directory, the build and the command', () => {
    expect(codeCacheDir({ XDG_CACHE_HOME: '/x', HOME: '/h' })).toBe('/x/lanyard/code-cache');
    expect(codeCacheDir({ HOME: '/h' })).toBe('/h/.cache/lanyard/code-cache');
    expect(codeCacheDir({})).toBeUndefined();
    const stat = { size: 930724, mtimeMs: 1796315031701.4, ino: 5325009 };
    expect(cacheName(stat)).toBe(`lanyard-${process.version}-${process.arch}-930724-1796315031701-5325009`);
    // A rebuilt bundle of the same length is another file (mtime, inode): it never meets the old cache.
    expect(cacheName({ ...stat, mtimeMs: stat.mtimeMs + 1000 })).not.toBe(cacheName(stat));
    expect(cacheName({ ...stat, ino: stat.ino + 1 })).not.toBe(cacheName(stat));
    expect(commandKey(['get', 'sas', '-p', 'shop'])).toBe('get sas');
    expect(commandKey(['--context', 'prod'])).toBe('prod');
    expect(commandKey(['version'])).toBe('version');
  });

  it('is written by the first run of a command, kept by the next, and extended by a new command', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-code-cache-'));
    const first = lanyard(['version'], home);
    expect(first.exitCode).toBe(0);
    expect(first.stdout).toMatch(/^lanyard \d+\.\d+\.\d+ \(commit /);
    const files = cacheFiles(home);
    expect(files).toHaveLength(2);
    const [bin, json] = files.map((f) => path.join(cacheDir(home), f)) as [string, string];
    expect(bin).toMatch(/\.bin$/);
    expect(JSON.parse(fs.readFileSync(json, 'utf8'))).toEqual(['version']);
    expect(fs.statSync(bin).size).toBeGreaterThan(10_000);
    expect(fs.statSync(path.dirname(bin)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(bin).mode & 0o777).toBe(0o600);

    const writtenAt = fs.statSync(bin).mtimeMs;
    expect(lanyard(['version'], home)).toEqual(first);
    expect(fs.statSync(bin).mtimeMs).toBe(writtenAt);

    const help = lanyard(['get', '--help'], home);
    expect(help.exitCode).toBe(0);
    expect(JSON.parse(fs.readFileSync(json, 'utf8'))).toEqual(['version', 'get']);
    expect(cacheFiles(home)).toEqual(files);
  });

  it('replaces a damaged cache and answers as without one', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-code-cache-'));
    const clean = lanyard(['version'], home);
    const bin = cacheFile(home, '.bin');
    const garbage = Buffer.alloc(fs.statSync(bin).size, 7);
    fs.writeFileSync(bin, garbage);
    expect(lanyard(['version'], home)).toEqual(clean);
    expect(fs.readFileSync(bin).equals(garbage)).toBe(false);
    expect(lanyard(['version'], home)).toEqual(clean);
  });

  it('writes a damaged list of commands again, keeps a recent cache of another build and removes an old one', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-code-cache-'));
    const clean = lanyard(['version'], home);
    const dir = cacheDir(home);
    const json = cacheFile(home, '.json');
    fs.writeFileSync(json, '["version"');
    const recent = path.join(dir, 'lanyard-v0.0.0-other-build.bin');
    const old = path.join(dir, 'lanyard-v0.0.0-older-build.bin');
    fs.writeFileSync(recent, 'x');
    fs.writeFileSync(old, 'x');
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
    fs.utimesSync(old, twoDaysAgo, twoDaysAgo);
    expect(lanyard(['version'], home)).toEqual(clean);
    expect(JSON.parse(fs.readFileSync(json, 'utf8'))).toEqual(['version']);
    expect(fs.existsSync(recent)).toBe(true);
    expect(fs.existsSync(old)).toBe(false);
  });

  it('neither reads nor writes a cache others may write', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-code-cache-'));
    const clean = lanyard(['version'], home);
    const dir = cacheDir(home);
    const bin = cacheFile(home, '.bin');
    // A cache file others may write is not read: it is replaced by one of this user's own.
    fs.chmodSync(bin, 0o666);
    expect(lanyard(['version'], home)).toEqual(clean);
    expect(fs.statSync(bin).mode & 0o777).toBe(0o600);
    // In a directory others may write, nothing is read or written.
    fs.chmodSync(dir, 0o777);
    for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
    expect(lanyard(['version'], home)).toEqual(clean);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('runs the same where the cache directory cannot be made', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-code-cache-'));
    const blocked = path.join(home, 'a-file');
    fs.writeFileSync(blocked, '');
    const r = lanyard(['version'], blocked);
    expect(r).toMatchObject({ exitCode: 0, stderr: '' });
    expect(r.stdout).toMatch(/^lanyard \d+\.\d+\.\d+ \(commit /);
    expect(fs.readFileSync(blocked, 'utf8')).toBe('');
  });
});
