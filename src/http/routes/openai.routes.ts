import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { InferenceService } from '../../inference/inference-service.js'
import type { OpenAiEmbeddings } from '../../registry/openai-embeddings.js'
import { principalOf } from '../authentication.js'
import { optionalNamespaceOf } from '../namespace-header.js'
import { installOpenAiErrorHandler } from '../openai-errors.js'
import { BEARER_AUTH } from '../schemas/common.schemas.js'
import {
  EmbeddingsRequestSchema,
  EmbeddingsResponseSchema,
  OpenAiErrorSchema,
} from '../schemas/openai.schemas.js'
import { reserveJsonBody } from './inference.routes.js'

export interface OpenAiRoutesOptions {
  readonly embeddings: OpenAiEmbeddings
  readonly inference: InferenceService
  /** Largest body: it is all JSON, read on the event loop. */
  readonly maxJsonBytes: number
}

/**
 * `POST /v1/embeddings`: OpenAI's embeddings API on berth's embedding models, with the same API
 * key, so OpenAI's clients work pointed at berth. Errors in OpenAI's shape on this route only.
 */
export const openAiRoutes: FastifyPluginAsyncZod<OpenAiRoutesOptions> = async (
  app,
  { embeddings, inference, maxJsonBytes },
) => {
  installOpenAiErrorHandler(app)
  const errors = Object.fromEntries(
    [400, 401, 403, 404, 413, 422, 429, 500, 503, 504].map((s) => [s, OpenAiErrorSchema]),
  )
  app.post(
    '/embeddings',
    {
      bodyLimit: maxJsonBytes,
      preParsing: reserveJsonBody(inference, maxJsonBytes),
      schema: {
        tags: ['OpenAI'],
        summary: 'Create embeddings (OpenAI-compatible)',
        description:
          'Texts or token ids through an embedding model (task_type embedding, with a tokenizer.json). The namespace is part of `model`, or the X-Namespace header.',
        security: BEARER_AUTH,
        body: EmbeddingsRequestSchema,
        response: { 200: EmbeddingsResponseSchema, ...errors },
      },
    },
    async (request) =>
      embeddings.create(principalOf(request), optionalNamespaceOf(request), request.body),
  )
}
