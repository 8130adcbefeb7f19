// Kept for importers in flight: the bounding helpers are pure and live in src/core/text.ts.
export * from '../core/text.ts';
