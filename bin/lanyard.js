#!/usr/bin/env node
// The published entry point. Sources are TypeScript run through tsx's loader, so the package ships no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
