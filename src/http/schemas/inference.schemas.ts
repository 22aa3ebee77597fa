import { z } from 'zod'
import { schemaRegistry } from './common.schemas.js'

const DATATYPE = z
  .string()
  .describe('BOOL, UINT8…UINT64, INT8…INT64, FP16, FP32, FP64, or BYTES (strings)')

const InferInputSchema = z.object({
  name: z.string(),
  shape: z.array(z.number().int().min(0)),
  datatype: DATATYPE,
  parameters: z
    .object({
      binary_data_size: z
        .number()
        .int()
        .optional()
        .describe('bytes of this tensor in the binary part of the body'),
    })
    .optional(),
  data: z
    .array(z.unknown())
    .optional()
    .describe(
      'row-major values, flat or nested (strings for BYTES); absent when binary_data_size is given',
    ),
})

/** Open Inference Protocol request; with the binary extension this is the JSON header. */
export const InferRequestSchema = z.object({
  id: z.string().optional(),
  parameters: z
    .object({ binary_data_output: z.boolean().optional() })
    .optional()
    .describe('binary_data_output: answer every output as binary'),
  inputs: z.array(InferInputSchema),
  outputs: z
    .array(
      z.object({
        name: z.string(),
        parameters: z.object({ binary_data: z.boolean().optional() }).optional(),
      }),
    )
    .optional()
    .describe('outputs wanted (default: all)'),
})
schemaRegistry.add(InferRequestSchema, { id: 'InferRequest' })

export const InferResponseSchema = z.object({
  id: z.string().optional(),
  model_name: z.string(),
  model_version: z.string(),
  outputs: z.array(
    z.object({
      name: z.string(),
      shape: z.array(z.number().int()),
      datatype: DATATYPE,
      parameters: z.object({ binary_data_size: z.number().int().optional() }).optional(),
      data: z.array(z.unknown()).optional(),
    }),
  ),
})
schemaRegistry.add(InferResponseSchema, { id: 'InferResponse' })

export const ServerMetadataSchema = z.object({
  name: z.string(),
  version: z.string(),
  extensions: z.array(z.string()),
})

const TensorMetadataSchema = z.object({
  name: z.string(),
  datatype: DATATYPE,
  shape: z.array(z.number().int()).describe('-1 for a dynamic dimension'),
})

export const ModelMetadataSchema = z.object({
  name: z.string(),
  versions: z.array(z.string()),
  platform: z.string(),
  model_id: z.string(),
  inputs: z.array(TensorMetadataSchema),
  outputs: z.array(TensorMetadataSchema),
})
schemaRegistry.add(ModelMetadataSchema, { id: 'ModelMetadata' })

export const ModelReadySchema = z.object({ name: z.string(), ready: z.boolean() })

export const OipModelParamsSchema = z.object({
  name: z.string().min(1).max(200).describe('a model name (highest deployed version) or model_id'),
})

export const OipVersionParamsSchema = OipModelParamsSchema.extend({
  version: z.string().min(1).max(40),
})
