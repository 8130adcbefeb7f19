// The environment `lanyard verify` reads (docs/verified-start.md#lanyard-verify-in-a-job-or-init-container): the identity variables the webhook injected, the
// expected role, and the region and endpoint overrides. The only place the command touches process.env.
export const VERIFY_ENV_KEYS = [
  'AWS_ROLE_ARN',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  'AWS_ACCESS_KEY_ID',
  'LANYARD_EXPECTED_ROLE',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_ENDPOINT_URL',
  'AWS_ENDPOINT_URL_STS',
] as const;

export type VerifyEnv = Partial<Record<(typeof VERIFY_ENV_KEYS)[number], string>>;

export function verifyEnv(env: Readonly<Record<string, string | undefined>> = process.env): VerifyEnv {
  const out: VerifyEnv = {};
  for (const k of VERIFY_ENV_KEYS) if (env[k] !== undefined && env[k] !== '') out[k] = env[k];
  return out;
}
