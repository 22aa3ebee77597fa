import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { ModelHistory } from '../../observability/model-history.js'
import type { ModelCatalog } from '../../registry/model-catalog.js'
import { principalOf } from '../authentication.js'
import { BEARER_AUTH, errorResponses } from '../schemas/common.schemas.js'
import { ModelParamsSchema } from '../schemas/model.schemas.js'
import { ModelHistoryResponseSchema } from '../schemas/model-history.schemas.js'

export interface ModelHistoryRoutesOptions {
  readonly catalog: Pick<ModelCatalog, 'get'>
  readonly history: Pick<ModelHistory, 'points' | 'stepSeconds'>
}

/**
 * `GET /v1/namespaces/{namespace_id}/models/{model_id}/history`: a model's last hour on this
 * server, per minute, for charts. Behind the authentication hook; the model is found as its
 * detail route finds it (another organization's is not found).
 */
export const modelHistoryRoutes: FastifyPluginAsyncZod<ModelHistoryRoutesOptions> = async (
  app,
  { catalog, history },
) => {
  app.get(
    '/namespaces/:namespace_id/models/:model_id/history',
    {
      schema: {
        tags: ['Custom Models'],
        summary: "A model's last hour: requests, errors, latency, queue depth, memory",
        description:
          'One point per minute over the last hour, oldest first, the current minute last (partial), minutes without activity as zeros: requests and errors, latency percentiles of the successful requests, the most requests holding the model at once, and its resident memory. Kept in memory by the server answering, for its own requests only, and lost when it restarts; the hourly analytics (GET /v1/analytics/inference/performance) are what lasts.',
        security: BEARER_AUTH,
        params: ModelParamsSchema,
        response: { 200: ModelHistoryResponseSchema, ...errorResponses(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const { namespace_id, model_id } = request.params
      const model = await catalog.get(principalOf(request), namespace_id, model_id)
      return {
        model_id: model.modelId,
        namespace_id: model.namespaceId,
        step_seconds: history.stepSeconds,
        points: history.points(model),
      }
    },
  )
}
