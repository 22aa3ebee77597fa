import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { InferenceService } from '../../inference/inference-service.js'
import type { RawInference } from '../../registry/raw-inference.js'
import { principalOf } from '../authentication.js'
import { namespaceOf } from '../namespace-header.js'
import { BEARER_AUTH, errorResponses } from '../schemas/common.schemas.js'
import {
  RawInferenceRequestSchema,
  RawInferenceResponseSchema,
} from '../schemas/raw-inference.schemas.js'
import { reserveBody } from './inference.routes.js'

export interface RawInferenceRoutesOptions {
  readonly rawInference: RawInference
  readonly inference: InferenceService
  readonly maxRequestBytes: number
}

/** `POST /v1/inference`: Mixpeek's raw inference, on the models of the X-Namespace namespace. */
export const rawInferenceRoutes: FastifyPluginAsyncZod<RawInferenceRoutesOptions> = async (
  app,
  { rawInference, inference, maxRequestBytes },
) => {
  app.post(
    '/inference',
    {
      bodyLimit: maxRequestBytes,
      preParsing: reserveBody(inference, maxRequestBytes),
      schema: {
        tags: ['Inference'],
        summary: 'Run a model by inference_name or feature_uri (Mixpeek raw inference)',
        description:
          'Texts for a model with a task pipeline (embedding or classification), tensors for any other. The namespace is the X-Namespace header (id or name). An on-demand model at rest is loaded by the request.',
        security: BEARER_AUTH,
        body: RawInferenceRequestSchema,
        response: {
          200: RawInferenceResponseSchema,
          ...errorResponses(400, 401, 403, 404, 413, 422, 429, 503, 504),
        },
      },
    },
    async (request) => rawInference.run(principalOf(request), namespaceOf(request), request.body),
  )
}
