import { z } from 'zod'
import { schemaRegistry } from './common.schemas.js'

/** Mixpeek's `RawInferenceRequest`. */
export const RawInferenceRequestSchema = z.object({
  provider: z
    .string()
    .nullish()
    .describe('external providers (openai, google, anthropic) are not run by berth: 400'),
  model: z.string().nullish().describe("the external provider's model"),
  inference_name: z
    .string()
    .nullish()
    .describe(
      'the model_id of an uploaded (or enabled org) model; a model name means its highest deployed version',
    ),
  feature_uri: z
    .string()
    .nullish()
    .describe(
      'mixpeek://{name}@{version}/{output}: that version; {output} keeps that output of a tensor model',
    ),
  inputs: z
    .record(z.string(), z.unknown())
    .describe(
      '{"text": str} or {"texts": [str]} for a model with a task pipeline; tensors by input name ({"shape", "datatype", "data"} or a nested array), or {"data": [[...]]} for a model with one input',
    ),
  parameters: z
    .record(z.string(), z.unknown())
    .nullish()
    .describe('normalize, truncate (booleans), dimensions, top_k (integers); others are ignored'),
  enable_semantic_cache: z.boolean().optional().describe('accepted; berth caches nothing'),
  cache_delta: z.number().min(0).max(1).nullish().describe('accepted; berth caches nothing'),
})
schemaRegistry.add(RawInferenceRequestSchema, { id: 'RawInferenceRequest' })

/** Mixpeek's `RawInferenceResponse`. */
export const RawInferenceResponseSchema = z.object({
  data: z
    .unknown()
    .describe(
      'embedding: the vector ({"text"}) or one per text ({"texts"}); classification: [{label, score}] best first, or one such list per text; tensor model: {output: {datatype, shape, data}}',
    ),
  provider: z.string().describe('always "berth"'),
  model: z.string().describe('the model_id that answered'),
  latency_ms: z.number(),
  cached: z.boolean(),
  tokens_used: z
    .record(z.string(), z.number().int())
    .nullable()
    .describe('{prompt, total}: the tokens the model read, for text; null for tensors'),
})
schemaRegistry.add(RawInferenceResponseSchema, { id: 'RawInferenceResponse' })
