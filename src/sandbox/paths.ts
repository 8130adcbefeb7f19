// Locations inside the package, found from this module's file so they work from any working directory, whether it
// runs from src/ (tests) or from a bundle chunk in dist/: the nearest directory upwards holding package.json.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function packageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const PACKAGE_ROOT = packageRoot(path.dirname(fileURLToPath(import.meta.url)));
export const CRD_DIR = path.join(PACKAGE_ROOT, 'deploy/helm/lanyard/crds');
export const SAMPLES_DIR = path.join(PACKAGE_ROOT, 'deploy/samples');
