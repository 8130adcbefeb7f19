// Kept for importers in flight: build information is neutral and lives in src/core/build-info.ts.
export * from '../core/build-info.ts';
