import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { ModelPerformance } from '../../domain/inference-stats.js'
import type { InferenceAnalytics } from '../../registry/inference-analytics.js'
import { principalOf } from '../authentication.js'
import { namespaceOf } from '../namespace-header.js'
import { PerformanceQuerySchema, PerformanceResponseSchema } from '../schemas/analytics.schemas.js'
import { BEARER_AUTH, errorResponses, NamespaceHeaderSchema } from '../schemas/common.schemas.js'

export interface AnalyticsRoutesOptions {
  readonly analytics: Pick<InferenceAnalytics, 'performance'>
}

/**
 * `GET /v1/analytics/inference/performance`: Mixpeek's route, which its own server leaves
 * unimplemented; berth answers from the hourly inference records it keeps. Behind the
 * authentication hook; the namespace comes from `X-Namespace`.
 */
export const analyticsRoutes: FastifyPluginAsyncZod<AnalyticsRoutesOptions> = async (
  app,
  { analytics },
) => {
  app.get(
    '/analytics/inference/performance',
    {
      schema: {
        tags: ['Analytics'],
        summary: 'Inference performance per model: requests, errors, latency, cold loads',
        description:
          'One object per model of the namespace that had traffic in the window (the current hour and the hours before it), from the records every server sharing the metadata store keeps. Latency percentiles are estimated from fixed histogram buckets. A model_name that matches nothing answers an empty array.',
        security: BEARER_AUTH,
        querystring: PerformanceQuerySchema,
        headers: NamespaceHeaderSchema,
        response: {
          200: PerformanceResponseSchema,
          ...errorResponses(400, 401, 403, 404, 422),
        },
      },
    },
    async (request) => {
      const { hours, model_name } = request.query
      const report = await analytics.performance(principalOf(request), namespaceOf(request), {
        hours,
        model: model_name,
      })
      return report.models.map((m) => performanceJson(m, report.hours, report.since))
    },
  )
}

function performanceJson(m: ModelPerformance, hours: number, since: string) {
  const successes = m.outcomes.success
  const errors = m.requests - successes
  const ms = (value: number) => Math.round(value * 1000) / 1000
  return {
    model_id: m.modelId,
    model_name: m.name,
    version: m.version,
    namespace_id: m.namespaceId,
    window_hours: hours,
    window_start: since,
    requests: m.requests,
    successes,
    errors,
    error_rate: m.requests === 0 ? 0 : errors / m.requests,
    timeouts: m.outcomes.timeout,
    rejected: m.outcomes.rejected,
    outcomes: { ...m.outcomes },
    latency_ms:
      m.latency === undefined
        ? null
        : {
            avg: ms(m.latency.avgMs),
            p50: ms(m.latency.p50Ms),
            p90: ms(m.latency.p90Ms),
            p99: ms(m.latency.p99Ms),
          },
    cold_loads: m.coldLoads,
    first_request_at: m.firstRequestAt,
    last_request_at: m.lastRequestAt,
    throughput_per_hour: ms(m.requests / hours),
  }
}
