#!/usr/bin/env -S node --max-semi-space-size=8
// The published entry point: runs the compiled output, dist/lanyard.cjs (scripts/build.mjs), with a V8 code cache of
// it in the user's cache directory (bin/code-cache.js, docs/adr/0709-one-bundle-and-a-code-cache.md).
// The shebang caps V8's young generation, so a busy webhook's RSS stays near 120 MB instead of doubling
// (docs/adr/0124-young-generation-capped.md); `node bin/lanyard.js` skips it, as Node runs the file without the line.
import { runBundle } from './code-cache.js';

runBundle(`${import.meta.dirname}/../dist/lanyard.cjs`, process.argv.slice(2), process.env);
