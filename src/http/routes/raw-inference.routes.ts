import type { FastifyReply } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { InferenceService } from '../../inference/inference-service.js'
import { type RawInference, rawInferenceJson } from '../../registry/raw-inference.js'
import { principalOf } from '../authentication.js'
import { namespaceOf } from '../namespace-header.js'
import { BEARER_AUTH, errorResponses } from '../schemas/common.schemas.js'
import {
  RawInferenceRequestSchema,
  RawInferenceResponseSchema,
} from '../schemas/raw-inference.schemas.js'
import { reserveJsonBody } from './inference.routes.js'

export interface RawInferenceRoutesOptions {
  readonly rawInference: RawInference
  readonly inference: InferenceService
  /** Largest body: it is all JSON, read on the event loop. */
  readonly maxJsonBytes: number
}

/** `POST /v1/inference`: Mixpeek's raw inference, on the models of the X-Namespace namespace. */
export const rawInferenceRoutes: FastifyPluginAsyncZod<RawInferenceRoutesOptions> = async (
  app,
  { rawInference, inference, maxJsonBytes },
) => {
  app.post(
    '/inference',
    {
      bodyLimit: maxJsonBytes,
      preParsing: reserveJsonBody(inference, maxJsonBytes),
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
    async (request, reply) => {
      const answer = await rawInference.run(
        principalOf(request),
        namespaceOf(request),
        request.body,
      )
      // Sent as written: tensors' 64-bit integers exact, the data never serialized twice.
      return (reply as FastifyReply).type('application/json').send(rawInferenceJson(answer))
    },
  )
}
