// Webhook metrics (docs/webhook.md#metrics) on the registry passed in. The reference's counter names are kept so dashboards
// carry over. Get-or-create, because `lanyard run` may start the webhook next to components sharing the registry.
import type { Registry } from 'prom-client';
import { counter, gauge, histogram } from '../runtime/metrics.ts';

export const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10,
];

export function createWebhookMetrics(r: Registry) {
  return {
    httpRequests: counter(r, 'http_request_count', 'Requests to /mutate and the debug routes.', [
      'verb',
      'path',
      'code',
    ]),
    podCount: counter(r, 'pod_identity_webhook_pod_count', 'Pods given an identity mode.', ['method']),
    missingSa: counter(
      r,
      'pod_identity_webhook_missing_sa_count',
      'Admissions whose ServiceAccount was missing or unresolved.',
    ),
    used: gauge(r, 'pod_identity_webhook_used', '1 once the ServiceAccount cache holds an entry.'),
    duration: histogram(
      r,
      'lanyard_webhook_request_duration_seconds',
      'Request handling time.',
      LATENCY_BUCKETS,
      ['path', 'code'],
    ),
    admissions: counter(
      r,
      'lanyard_webhook_admissions_total',
      'Admission reviews by outcome and identity source.',
      ['outcome', 'source'],
    ),
    saLookups: counter(r, 'lanyard_webhook_sa_lookups_total', 'ServiceAccount resolutions by result.', [
      'result',
    ]),
    saFetchDuration: histogram(
      r,
      'lanyard_webhook_sa_fetch_duration_seconds',
      'Live ServiceAccount GETs.',
      LATENCY_BUCKETS,
    ),
    gatesAdded: counter(r, 'lanyard_webhook_gates_added_total', 'Scheduling gates added at admission.'),
    cacheEntries: gauge(r, 'lanyard_webhook_cache_entries', 'Entries per cache.', ['cache']),
    configReloads: counter(r, 'lanyard_webhook_config_reloads_total', 'Configuration reloads.', [
      'source',
      'result',
    ]),
    certExpiry: gauge(
      r,
      'lanyard_webhook_certificate_expiry_timestamp_seconds',
      'Serving certificate notAfter.',
    ),
    ready: gauge(r, 'lanyard_webhook_ready', '1 while /readyz answers 200.'),
    connectionsDropped: counter(
      r,
      'lanyard_webhook_connections_dropped_total',
      'HTTPS connections closed at once because --max-connections were open.',
    ),
  };
}

export type WebhookMetrics = ReturnType<typeof createWebhookMetrics>;
