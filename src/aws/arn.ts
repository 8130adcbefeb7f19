// Kept so work in flight that imports the ARN rules from aws/ still builds; the rules are pure and live in src/core/arn.ts.
export * from '../core/arn.ts';
