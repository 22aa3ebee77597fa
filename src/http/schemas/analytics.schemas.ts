import { z } from 'zod'
import { INFERENCE_OUTCOMES, MAX_HISTORY_HOURS } from '../../domain/inference-stats.js'
import { schemaRegistry } from './common.schemas.js'

/** Mixpeek's query of `GET /v1/analytics/inference/performance`. */
export const PerformanceQuerySchema = z.object({
  model_name: z
    .string()
    .min(1)
    .max(128)
    .optional()
    .describe('Filter by model: its name (every version) or its model_id'),
  hours: z
    .preprocess(
      // Decimal digits only, as the upload form's integers: no `0x10`, `1e2` or `1.0`.
      (value) => (typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value),
      z.number().int().min(1).max(MAX_HISTORY_HOURS).default(24),
    )
    .describe('Hours of history: the current hour and the hours before it'),
})

const count = z.number().int().min(0)

const ModelPerformanceSchema = z.object({
  model_id: z.string(),
  model_name: z.string(),
  version: z.string(),
  namespace_id: z.string(),
  window_hours: z.number().int().describe('the hours asked for'),
  window_start: z.string().describe('start of the oldest hour in the window (ISO-8601)'),
  requests: count.describe('every request in the window, whatever its outcome'),
  successes: count,
  errors: count.describe('requests that did not succeed, whatever the reason'),
  error_rate: z.number().describe('errors / requests (0 without requests)'),
  timeouts: count.describe('requests that ran past the inference timeout (504)'),
  rejected: count.describe('requests refused for load: queue or memory budget full (429)'),
  outcomes: z
    .object(Object.fromEntries(INFERENCE_OUTCOMES.map((o) => [o, count])))
    .describe('requests by outcome, as berth_inference_requests_total counts them'),
  latency_ms: z
    .object({
      avg: z.number(),
      p50: z.number(),
      p90: z.number(),
      p99: z.number(),
    })
    .nullable()
    .describe(
      'latency of the successful requests, queueing and cold loads included; percentiles estimated from a histogram of fixed buckets (interpolated within one); null when none succeeded',
    ),
  cold_loads: count.describe('loads of the (on-demand) model that a request started'),
  first_request_at: z.string().nullable(),
  last_request_at: z.string().nullable(),
  throughput_per_hour: z.number().describe('requests / window_hours'),
})

/** Mixpeek's answer: an array of objects, one per model with traffic in the window. */
export const PerformanceResponseSchema = z.array(ModelPerformanceSchema)
schemaRegistry.add(PerformanceResponseSchema, {
  id: 'InferencePerformanceResponse',
  examples: [
    [
      {
        model_id: 'tiny-mlp_1_0_0',
        model_name: 'tiny-mlp',
        version: '1.0.0',
        namespace_id: 'ns_ad696692f902df2d63e8',
        window_hours: 24,
        window_start: '2026-12-06T13:00:00.000Z',
        requests: 25,
        successes: 20,
        errors: 5,
        error_rate: 0.2,
        timeouts: 0,
        rejected: 0,
        outcomes: {
          success: 20,
          bad_request: 5,
          not_ready: 0,
          timeout: 0,
          rejected: 0,
          error: 0,
        },
        latency_ms: { avg: 6.026, p50: 1.563, p90: 5, p99: 95 },
        cold_loads: 1,
        first_request_at: '2026-12-07T12:38:33.093Z',
        last_request_at: '2026-12-07T12:38:33.410Z',
        throughput_per_hour: 1.042,
      },
    ],
  ],
})
