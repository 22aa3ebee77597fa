import { z } from 'zod'
import {
  MEMORY_BYTES_BOUNDS,
  MODEL_NAME_PATTERN,
  MODEL_VERSION_PATTERN,
  RESOURCE_BOUNDS,
} from '../../domain/model.js'
import { MODEL_FORMATS } from '../../domain/model-format.js'
import {
  UPLOAD_URL_DEFAULT_SECONDS,
  UPLOAD_URL_MAX_SECONDS,
  UPLOAD_URL_MIN_SECONDS,
} from '../../domain/org-model.js'
import { TensorSpecSchema } from './model.schemas.js'

// Mixpeek's organization registry: presigned upload, confirm, list, get, delete, and enabling
// org models in a namespace (docs/http-api.md).

const ResourceRequirementsSchema = z
  .object({
    num_cpus: z.number().min(RESOURCE_BOUNDS.minCpus).max(RESOURCE_BOUNDS.maxCpus).default(1),
    num_gpus: z.number().int().min(0).max(RESOURCE_BOUNDS.maxGpus).default(0),
    memory: z
      .number()
      .int()
      .min(MEMORY_BYTES_BOUNDS.min)
      .max(MEMORY_BYTES_BOUNDS.max)
      .default(4 * 1024 ** 3)
      .describe('bytes'),
  })
  .strict()

export const CreateModelUploadRequestSchema = z
  .object({
    name: z.string().regex(MODEL_NAME_PATTERN),
    version: z.string().regex(MODEL_VERSION_PATTERN).describe('MAJOR.MINOR.PATCH'),
    model_format: z.enum(MODEL_FORMATS),
    description: z.string().max(2000).nullable().optional(),
    file_size_bytes: z.number().int().min(0).nullable().optional(),
    presigned_url_expiration: z
      .number()
      .int()
      .min(UPLOAD_URL_MIN_SECONDS)
      .max(UPLOAD_URL_MAX_SECONDS)
      .default(UPLOAD_URL_DEFAULT_SECONDS)
      .describe('seconds'),
    // Absent: every field's default (the same as a direct upload's).
    resource_requirements: ResourceRequirementsSchema.prefault({}),
    framework: z.string().max(128).nullable().optional(),
    task_type: z.string().max(64).nullable().optional(),
  })
  .strict()

export const ModelPresignedUrlResponseSchema = z.object({
  upload_id: z.string(),
  presigned_url: z.string().describe('PUT the .tar.gz here (Content-Type: application/gzip)'),
  s3_key: z.string().describe("the archive's key in the artifact store"),
  expires_at: z.string(),
  organization_id: z.string(),
  name: z.string(),
  version: z.string(),
  model_format: z.enum(MODEL_FORMATS),
})

export const UploadParamsSchema = z.object({ upload_id: z.string().min(1).max(128) })

export const SignedUploadQuerySchema = z.object({
  expires: z.string().max(20),
  signature: z.string().max(128),
})

export const ConfirmModelUploadRequestSchema = z
  .object({
    etag: z.string().nullable().optional(),
    file_size_bytes: z.number().int().min(0).nullable().optional(),
  })
  .nullable()
  .optional()

const VALIDATION_STATUS = z.enum(['pending', 'passed', 'failed'])

export const ConfirmModelUploadResponseSchema = z.object({
  success: z.boolean(),
  upload_id: z.string(),
  model_id: z.string().nullable(),
  validation_status: VALIDATION_STATUS,
  validation_errors: z.array(z.string()).nullable(),
  s3_archive_url: z.string().nullable(),
  message: z.string().nullable(),
})

export const OrgModelListItemSchema = z.object({
  model_id: z.string(),
  name: z.string(),
  version: z.string(),
  model_format: z.enum(MODEL_FORMATS),
  description: z.string().nullable(),
  framework: z.string().nullable(),
  task_type: z.string().nullable(),
  deployed: z.boolean().describe('whether a namespace that enables it has it deployed'),
  validation_status: VALIDATION_STATUS,
  created_at: z.string(),
  updated_at: z.string(),
})

export const OrgModelListResponseSchema = z.object({
  success: z.boolean(),
  models: z.array(OrgModelListItemSchema),
  total: z.number().int(),
  organization_id: z.string(),
})

export const OrgModelDetailResponseSchema = z.object({
  success: z.boolean(),
  model: z.object({
    model_id: z.string(),
    organization_id: z.string(),
    name: z.string(),
    version: z.string(),
    description: z.string().nullable(),
    s3_archive_url: z.string(),
    model_format: z.enum(MODEL_FORMATS),
    model_hash: z.string().describe('SHA-256 of the archive; empty until the upload is confirmed'),
    validation_status: VALIDATION_STATUS,
    validation_errors: z.array(z.string()),
    framework: z.string().nullable(),
    task_type: z.string().nullable(),
    deployed: z.boolean().describe('whether a namespace that enables it has it deployed'),
    deployment_info: z.object({
      deployed_at: z
        .string()
        .nullable()
        .describe('when the first namespace that enables it deployed it; null: none has'),
    }),
    input_schema: z.object({ inputs: z.array(TensorSpecSchema) }).nullable(),
    output_schema: z.object({ outputs: z.array(TensorSpecSchema) }).nullable(),
    enabled_in: z.array(z.string()).describe('berth: the namespaces that enable it'),
    resource_requirements: z.object({
      num_cpus: z.number(),
      num_gpus: z.number().int(),
      memory: z.number().int(),
    }),
    manifest: z.record(z.string(), z.unknown()).nullable(),
    upload_id: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
  }),
})

export const OrgModelParamsSchema = z.object({ model_id: z.string().min(1).max(200) })

export const OrgModelDeleteResponseSchema = z.object({
  success: z.boolean(),
  model_id: z.string(),
  message: z.string(),
})

export const NamespaceOrgModelParamsSchema = z.object({
  namespace_id: z.string().min(1).max(128),
  model_id: z.string().min(1).max(200),
})

export const AvailableOrgModelsResponseSchema = z.object({
  success: z.boolean(),
  models: z.array(
    z.object({
      model_id: z.string(),
      name: z.string(),
      version: z.string(),
      model_format: z.string(),
      description: z.string().nullable(),
      framework: z.string().nullable(),
      task_type: z.string().nullable(),
      validation_status: VALIDATION_STATUS,
      enabled_in_namespace: z.boolean(),
    }),
  ),
  total: z.number().int(),
  namespace_id: z.string(),
})

export const EnableOrgModelRequestSchema = z
  .object({
    deploy: z.boolean().default(false),
    resource_overrides: z
      .object({
        num_cpus: z.number().min(RESOURCE_BOUNDS.minCpus).max(RESOURCE_BOUNDS.maxCpus).optional(),
        num_gpus: z.number().int().min(0).max(RESOURCE_BOUNDS.maxGpus).optional(),
        memory: z
          .number()
          .int()
          .min(MEMORY_BYTES_BOUNDS.min)
          .max(MEMORY_BYTES_BOUNDS.max)
          .optional()
          .describe('bytes'),
      })
      .strict()
      .nullable()
      .optional(),
  })
  .strict()
  .nullable()
  .optional()

export const EnableOrgModelResponseSchema = z.object({
  success: z.boolean(),
  model_id: z.string(),
  namespace_id: z.string(),
  deployment_status: z.enum(['deployed', 'pending', 'failed', 'skipped']),
  message: z.string(),
})

export const DisableOrgModelResponseSchema = z.object({
  success: z.boolean(),
  model_id: z.string(),
  namespace_id: z.string(),
  message: z.string(),
})
