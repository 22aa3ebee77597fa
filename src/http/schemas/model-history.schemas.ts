import { z } from 'zod'
import { IDLE_POINT } from '../../observability/model-history.js'
import { schemaRegistry } from './common.schemas.js'

const count = z.number().int().min(0)
const percentile = z.number().nullable()

const HistoryPointSchema = z.object({
  time: z.string().describe('start of the step (ISO-8601)'),
  requests: count.describe('requests that ended in the step, whatever their outcome'),
  errors: count.describe('those that did not succeed, whatever the reason'),
  cold_loads: count.describe('loads of the (on-demand) model that a request started'),
  latency_ms: z
    .object({ p50: percentile, p95: percentile, p99: percentile })
    .describe(
      'latency of the successful requests, queueing and cold loads included; percentiles estimated from a histogram of fixed buckets (interpolated within one); null when none succeeded',
    ),
  max_active_requests: count.describe(
    'the most requests holding the model at once (queued, running or waiting for its load), sampled every 5 seconds; 0 when none',
  ),
  resident_bytes: z
    .number()
    .int()
    .nullable()
    .describe(
      'memory its runners held, last measured in the step (its share in a shared process; 0 without a runner); null when none was measured (a step without activity while not loaded)',
    ),
})

/** `GET /v1/namespaces/{namespace_id}/models/{model_id}/history`. */
export const ModelHistoryResponseSchema = z.object({
  model_id: z.string(),
  namespace_id: z.string(),
  step_seconds: z.number().int().describe('the width of each point'),
  points: z
    .array(HistoryPointSchema)
    .describe(
      'the last hour, oldest first, evenly spaced: the current (partial) step last, steps without any activity as zeros and nulls',
    ),
})
schemaRegistry.add(ModelHistoryResponseSchema, {
  id: 'ModelHistoryResponse',
  examples: [
    {
      model_id: 'tiny-mlp_2_0_0',
      namespace_id: 'ns_2569dbaee6722abd5a1e',
      step_seconds: 60,
      points: [
        { time: '2026-12-07T12:47:00.000Z', ...IDLE_POINT },
        { time: '2026-12-07T12:48:00.000Z', ...IDLE_POINT },
        {
          time: '2026-12-07T12:49:00.000Z',
          requests: 25,
          errors: 5,
          cold_loads: 1,
          latency_ms: { p50: 1.588, p95: 5, p99: 140 },
          max_active_requests: 0,
          resident_bytes: 98701312,
        },
      ],
    },
  ],
})
