import { z } from 'zod'
import { schemaRegistry } from './common.schemas.js'

/**
 * The Open Inference Protocol's extensions as Triton's HTTP API has them: model configuration,
 * statistics and the model repository (with examples from a real server).
 */

const ConfigTensorSchema = z.object({
  name: z.string(),
  data_type: z.string().describe('TYPE_FP32, TYPE_INT64, TYPE_STRING (BYTES)…'),
  dims: z
    .array(z.number().int())
    .describe('-1 for a dynamic dim; without the batch dim when max_batch_size > 0'),
})

export const ModelConfigSchema = z.object({
  name: z.string(),
  platform: z.string().describe('onnxruntime_onnx, pytorch_libtorch, berth_weights…'),
  backend: z.string().describe('onnxruntime, pytorch, or berth'),
  max_batch_size: z
    .number()
    .int()
    .describe('rows berth batches requests up to; 0 when the model is not batched'),
  input: z.array(ConfigTensorSchema),
  output: z.array(ConfigTensorSchema),
  instance_group: z
    .array(
      z.object({
        name: z.string(),
        kind: z.enum(['KIND_CPU', 'KIND_GPU']),
        count: z.number().int().describe('the deployment replicas'),
      }),
    )
    .describe('one group: the replicas, on GPUs when the model asks for num_gpus'),
  dynamic_batching: z
    .object({ max_queue_delay_microseconds: z.number().int() })
    .optional()
    .describe('present when max_batch_size > 0'),
})

schemaRegistry.add(ModelConfigSchema, {
  id: 'ModelConfig',
  examples: [
    {
      name: 'scorer',
      platform: 'onnxruntime_onnx',
      backend: 'onnxruntime',
      max_batch_size: 8,
      input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [4] }],
      output: [{ name: 'y', data_type: 'TYPE_FP32', dims: [3] }],
      instance_group: [{ name: 'scorer', kind: 'KIND_CPU', count: 1 }],
      dynamic_batching: { max_queue_delay_microseconds: 500 },
    },
  ],
})

const DurationSchema = z.object({
  count: z.number().int(),
  ns: z.number().int().describe('cumulative nanoseconds'),
})

const ModelStatisticsSchema = z.object({
  name: z.string(),
  version: z.string(),
  last_inference: z.number().int().describe('when the last request ended, ms since the epoch'),
  inference_count: z.number().int().describe('successful inferences (a batched request: rows)'),
  execution_count: z.number().int().describe('runner calls (a dynamic batch is one)'),
  inference_stats: z.object({
    success: DurationSchema.describe('requests answered, and their time in the server'),
    fail: DurationSchema.describe('requests refused or failed'),
    queue: DurationSchema.describe('time waiting for a runner'),
    compute_input: DurationSchema.describe('not measured apart: count as compute_infer, 0 ns'),
    compute_infer: DurationSchema.describe('the runner call: transfer to the runner and run'),
    compute_output: DurationSchema.describe('not measured apart: count as compute_infer, 0 ns'),
    cache_hit: DurationSchema.describe('no response cache: always 0'),
    cache_miss: DurationSchema.describe('no response cache: always 0'),
  }),
  batch_stats: z.array(
    z.object({
      batch_size: z.number().int(),
      compute_input: DurationSchema,
      compute_infer: DurationSchema,
      compute_output: DurationSchema,
    }),
  ),
})

const ZERO = { count: 0, ns: 0 }

export const ModelStatsResponseSchema = z.object({ model_stats: z.array(ModelStatisticsSchema) })

schemaRegistry.add(ModelStatsResponseSchema, {
  id: 'ModelStatsResponse',
  examples: [
    {
      model_stats: [
        {
          name: 'scorer',
          version: '1.0.0',
          last_inference: 1796647181239,
          inference_count: 3,
          execution_count: 2,
          inference_stats: {
            success: { count: 2, ns: 16673444 },
            fail: { count: 1, ns: 390862 },
            queue: { count: 2, ns: 9777765 },
            compute_input: { count: 2, ns: 0 },
            compute_infer: { count: 2, ns: 5989791 },
            compute_output: { count: 2, ns: 0 },
            cache_hit: ZERO,
            cache_miss: ZERO,
          },
          batch_stats: [
            {
              batch_size: 1,
              compute_input: { count: 1, ns: 0 },
              compute_infer: { count: 1, ns: 5020339 },
              compute_output: { count: 1, ns: 0 },
            },
            {
              batch_size: 2,
              compute_input: { count: 1, ns: 0 },
              compute_infer: { count: 1, ns: 870636 },
              compute_output: { count: 1, ns: 0 },
            },
          ],
        },
      ],
    },
  ],
})

const RepositoryEntrySchema = z.object({
  name: z.string(),
  version: z.string(),
  state: z.enum(['READY', 'LOADING', 'UNLOADING', 'UNAVAILABLE']),
  reason: z.string().describe("empty when READY; else berth's deployment reason (and message)"),
})

export const RepositoryIndexRequestSchema = z
  .object({ ready: z.boolean().optional().describe('true: only the models that are READY') })
  .nullish()

schemaRegistry.add(RepositoryIndexRequestSchema, {
  id: 'RepositoryIndexRequest',
  examples: [{ ready: true }],
})

export const RepositoryIndexSchema = z.array(RepositoryEntrySchema)
schemaRegistry.add(RepositoryIndexSchema, {
  id: 'RepositoryIndex',
  examples: [
    [
      { name: 'scorer', version: '1.0.0', state: 'READY', reason: '' },
      { name: 'scorer', version: '2.0.0', state: 'UNAVAILABLE', reason: 'undeployed' },
    ],
  ],
})

export const RepositoryLoadRequestSchema = z
  .object({
    parameters: z
      .object({})
      .strict()
      .optional()
      .describe('no parameter is taken: berth loads the uploaded model, never a new config'),
  })
  .nullish()

schemaRegistry.add(RepositoryLoadRequestSchema, {
  id: 'RepositoryLoadRequest',
  examples: [{}],
})

export const RepositoryUnloadRequestSchema = z
  .object({
    parameters: z
      .object({
        unload_dependents: z.boolean().optional().describe('taken; berth models have none'),
      })
      .strict()
      .optional(),
  })
  .nullish()

schemaRegistry.add(RepositoryUnloadRequestSchema, {
  id: 'RepositoryUnloadRequest',
  examples: [{ parameters: { unload_dependents: false } }],
})

export const RepositoryModelsSchema = z.object({
  models: z.array(RepositoryEntrySchema).describe('the model versions loaded or unloaded'),
})

schemaRegistry.add(RepositoryModelsSchema, {
  id: 'RepositoryModels',
  examples: [{ models: [{ name: 'scorer', version: '1.0.0', state: 'READY', reason: '' }] }],
})
