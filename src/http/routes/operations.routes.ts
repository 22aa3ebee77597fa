import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { Metrics } from '../../observability/metrics.js'

export interface OperationsRoutesOptions {
  readonly metrics: Metrics
}

const tags = ['Operations']

/** `/healthz` and `/metrics`: open, no API key (probes and scrapers carry none). */
export const operationsRoutes: FastifyPluginAsyncZod<OperationsRoutesOptions> = async (
  app,
  { metrics },
) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags,
        summary: 'Liveness of the API process',
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  )

  app.get(
    '/metrics',
    {
      schema: {
        tags,
        summary: 'Prometheus metrics, every name prefixed berth_',
        produces: ['text/plain'],
        response: { 200: z.string() },
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await metrics.render()
      reply.type(contentType)
      // Plain text, not JSON: bypass the JSON serializer.
      return reply.serializer((payload: unknown) => String(payload)).send(body)
    },
  )
}
