import { z } from 'zod'
import { MODEL_FORMATS } from '../../domain/model.js'
import { schemaRegistry } from './common.schemas.js'

/**
 * The upload form, exactly as the seed's OpenAPI declares it (same fields, types, enums,
 * defaults, required list), plus berth's `deploy`. For the document only: the multipart body is
 * parsed and validated by the registry.
 */
export const UploadModelBodySchema = z.object({
  file: z
    .string()
    .meta({ format: 'binary', title: 'File', description: 'Model archive (.tar.gz)' }),
  name: z.string().meta({ title: 'Name', description: 'Model name' }),
  version: z.string().meta({ title: 'Version', description: 'Model version' }),
  model_format: z.enum(MODEL_FORMATS).meta({ title: 'Model Format', description: 'Model format' }),
  framework: z
    .string()
    .nullable()
    .optional()
    .meta({ title: 'Framework', description: 'ML framework (e.g., sentence-transformers)' }),
  task_type: z
    .string()
    .nullable()
    .optional()
    .meta({ title: 'Task Type', description: 'Task type (e.g., embedding, classification)' }),
  num_cpus: z.number().default(1).meta({ title: 'Num Cpus', description: 'CPU requirements' }),
  num_gpus: z
    .number()
    .int()
    .default(0)
    .meta({ title: 'Num Gpus', description: 'GPU requirements' }),
  memory_gb: z.number().default(4).meta({ title: 'Memory Gb', description: 'Memory in GB' }),
  deploy: z
    .boolean()
    .default(true)
    .meta({ title: 'Deploy', description: 'berth: deploy right after upload (default true)' }),
})
schemaRegistry.add(UploadModelBodySchema, {
  id: 'Body_upload_model_v1_namespaces__namespace_id__models_post',
})

export const ModelUploadResponseSchema = z.object({
  success: z.boolean().meta({ title: 'Success', description: 'Whether upload succeeded' }),
  model_id: z.string().meta({ title: 'Model Id', description: 'Unique model identifier' }),
  deployment_status: z
    .enum(['deployed', 'pending', 'failed', 'not_deployed'])
    .meta({ title: 'Deployment Status', description: 'Deployment status' }),
  endpoint: z.string().meta({ title: 'Endpoint', description: 'Model inference endpoint' }),
  model_archive_url: z
    .string()
    .meta({ title: 'Model Archive Url', description: 'S3 URL where archive is stored' }),
})
schemaRegistry.add(ModelUploadResponseSchema, { id: 'ModelUploadResponse' })

export const ModelListItemSchema = z.object({
  model_id: z.string(),
  name: z.string(),
  version: z.string(),
  model_format: z.string(),
  framework: z.string().nullable(),
  task_type: z.string().nullable(),
  deployed: z.boolean(),
  endpoint: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
})
schemaRegistry.add(ModelListItemSchema, { id: 'ModelListItem' })

export const ModelListResponseSchema = z.object({
  success: z.boolean(),
  models: z.array(ModelListItemSchema),
  total: z.number().int(),
  namespace_id: z.string(),
})
schemaRegistry.add(ModelListResponseSchema, { id: 'ModelListResponse' })

const TensorSpecSchema = z.object({
  name: z.string(),
  datatype: z.string().describe('Open Inference Protocol datatype, e.g. FP32'),
  shape: z.array(z.union([z.number().int(), z.string()])).describe('sizes; names for dynamic dims'),
})

export const CustomModelSchema = z.object({
  model_id: z.string(),
  namespace_id: z.string(),
  name: z.string(),
  version: z.string(),
  model_format: z.enum(MODEL_FORMATS),
  framework: z.string().nullable(),
  task_type: z.string().nullable(),
  model_archive_url: z.string(),
  model_hash: z.string().describe('SHA-256 of the archive'),
  file_size_bytes: z.number().int(),
  deployed: z.boolean(),
  deployment_info: z.object({
    endpoint: z.string(),
    base_image: z.string(),
    deployed_at: z.string().nullable(),
  }),
  resource_requirements: z.object({
    num_cpus: z.number(),
    num_gpus: z.number().int(),
    memory: z.number().int().describe('bytes'),
  }),
  input_schema: z.object({ inputs: z.array(TensorSpecSchema) }).nullable(),
  output_schema: z.object({ outputs: z.array(TensorSpecSchema) }).nullable(),
  deployment: z.object({
    state: z.string(),
    reason: z.string(),
    since: z.string(),
    replicas: z.number().int(),
  }),
  manifest: z.record(z.string(), z.unknown()).describe('what validation found in the archive'),
  created_at: z.string(),
  updated_at: z.string(),
})
schemaRegistry.add(CustomModelSchema, { id: 'CustomModel' })

export const ModelDetailResponseSchema = z.object({
  success: z.boolean(),
  model: CustomModelSchema,
})
schemaRegistry.add(ModelDetailResponseSchema, { id: 'ModelDetailResponse' })

export const ModelDeleteResponseSchema = z.object({
  success: z.boolean(),
  model_id: z.string(),
  message: z.string(),
})
schemaRegistry.add(ModelDeleteResponseSchema, { id: 'ModelDeleteResponse' })

export const NamespaceModelsParamsSchema = z.object({
  namespace_id: z.string().min(1).max(128).describe('Namespace id (ns_…) or name'),
})

export const ModelParamsSchema = NamespaceModelsParamsSchema.extend({
  model_id: z.string().min(1).max(200),
})
