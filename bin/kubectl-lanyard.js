#!/usr/bin/env node
// `kubectl lanyard ...`: kubectl runs any `kubectl-*` program on PATH as a plugin (deploy/krew/lanyard.yaml).
// The same program as `lanyard`; it names itself `kubectl lanyard` in help and completion.
import './lanyard.js';
