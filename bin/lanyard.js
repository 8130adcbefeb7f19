#!/usr/bin/env node
// The published entry point: runs the compiled output in dist/ (scripts/build.mjs), which turns Node's compile cache
// on before it loads any command (src/config/compile-cache.ts).
await import('../dist/main.js');
