#!/usr/bin/env node
// The published entry point: runs the compiled output, dist/lanyard.cjs (scripts/build.mjs), with a V8 code cache of
// it in the user's cache directory (bin/code-cache.js, docs/adr/0709-one-bundle-and-a-code-cache.md).
import { runBundle } from './code-cache.js';

runBundle(`${import.meta.dirname}/../dist/lanyard.cjs`, process.argv.slice(2), process.env);
