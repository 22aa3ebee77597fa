import { z } from 'zod'
import { schemaRegistry } from './common.schemas.js'

const MAX_INPUTS = 256

/** OpenAI's `CreateEmbeddingRequest`. */
export const EmbeddingsRequestSchema = z.object({
  model: z
    .string()
    .min(1)
    .max(512)
    .describe(
      '"{namespace}/{model}" (namespace id or name; model_id or name), or a model of the X-Namespace namespace, or a model_id found in one namespace',
    ),
  input: z
    .union([
      z.string(),
      z.array(z.string()).min(1).max(MAX_INPUTS),
      z.array(z.number().int().min(0)).min(1),
      z
        .array(z.array(z.number().int().min(0)).min(1))
        .min(1)
        .max(MAX_INPUTS),
    ])
    .describe("a text, texts, or the model's token ids (one array, or one per text)"),
  encoding_format: z.enum(['float', 'base64']).optional().describe('base64: little-endian FP32'),
  dimensions: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe(
      "keep the first dimensions (at most the model's), normalised again when the model normalises",
    ),
  user: z.string().optional().describe('accepted, unused'),
})
schemaRegistry.add(EmbeddingsRequestSchema, { id: 'CreateEmbeddingRequest' })

/** OpenAI's `CreateEmbeddingResponse`. */
export const EmbeddingsResponseSchema = z.object({
  object: z.literal('list'),
  data: z.array(
    z.object({
      object: z.literal('embedding'),
      index: z.number().int(),
      embedding: z.union([z.array(z.number()), z.string()]),
    }),
  ),
  model: z.string(),
  usage: z.object({ prompt_tokens: z.number().int(), total_tokens: z.number().int() }),
})
schemaRegistry.add(EmbeddingsResponseSchema, { id: 'CreateEmbeddingResponse' })

/** OpenAI's error body, on the OpenAI-compatible routes only. */
export const OpenAiErrorSchema = z.object({
  error: z.object({
    message: z.string(),
    type: z
      .string()
      .describe(
        'invalid_request_error, authentication_error, permission_error, rate_limit_error or server_error',
      ),
    param: z.string().nullable(),
    code: z.string().describe("berth's stable error code"),
  }),
})
schemaRegistry.add(OpenAiErrorSchema, { id: 'OpenAiError' })
