// What `lanyard version` reports: the package version and the git commit the build embedded (scripts/build.mjs
// defines __LANYARD_COMMIT__; running the TypeScript sources directly, as the tests do, reports "unknown").
import pkg from '../../package.json' with { type: 'json' };

declare const __LANYARD_COMMIT__: string | undefined;

export const BUILD_INFO = {
  version: pkg.version,
  commit: typeof __LANYARD_COMMIT__ === 'string' ? __LANYARD_COMMIT__ : 'unknown',
} as const;
