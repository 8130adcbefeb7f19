#!/usr/bin/env node
// The published entry point: runs the compiled output in dist/ (scripts/build.mjs). Node's compile cache keeps
// V8's compiled code between runs, which shortens every CLI start; where no cache directory is writable (the
// image's read-only root) Node simply runs without it.
import module from 'node:module';

module.enableCompileCache?.();
await import('../dist/main.js');
