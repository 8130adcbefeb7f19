// Locations inside the package, resolved from this file so they work from any working directory.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CRD_DIR = path.join(PACKAGE_ROOT, 'deploy/helm/lanyard/crds');
export const SAMPLES_DIR = path.join(PACKAGE_ROOT, 'deploy/samples');
