import { z } from 'zod'
import type { UnpackedArchive } from '../../archives/archive-workspace.js'
import { DEPLOYMENT_STATES } from '../../domain/deployment-state.js'
import { LOAD_POLICIES } from '../../domain/load-policy.js'
import {
  MAX_BATCH_SIZE,
  MAX_IDLE_TIMEOUT_S,
  MAX_QUEUE_DELAY_US,
  MAX_REPLICAS,
  MODEL_NAME_PATTERN,
  MODEL_VERSION_PATTERN,
  NODE_SELECTOR_BOUNDS,
  RESOURCE_BOUNDS,
} from '../../domain/model.js'
import { MODEL_FORMATS } from '../../domain/model-format.js'
import { schemaRegistry } from './common.schemas.js'

// Multipart fields arrive as text. An empty field counts as absent and its default applies, as
// FastAPI reads a form (HTML forms and some clients send every field, empty when unset). The
// document shows the types read.
const absentIfBlank = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema)

// Numbers are read only as written in decimal digits (an optional sign; a fraction where the field
// is not an integer), with blanks around them allowed as pydantic allows them. `Number()` would
// also read "0x10", "0b1", "1e1", "Infinity" and a blank (as 0): a value its sender did not write.
const DECIMAL_NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)$/
const DECIMAL_INTEGER = /^[+-]?\d+$/
const decimalOf = (pattern: RegExp) => (value: unknown) =>
  typeof value === 'string' && pattern.test(value.trim()) ? Number(value.trim()) : value
/** A form number: `schema` checks the bounds, after the text is read as a decimal. */
const formNumber = <T extends z.ZodType>(schema: T) =>
  absentIfBlank(z.preprocess(decimalOf(DECIMAL_NUMBER), schema))
/** A form integer: decimal digits only (no fraction, not even ".0"). */
const formInteger = <T extends z.ZodType>(schema: T) =>
  absentIfBlank(z.preprocess(decimalOf(DECIMAL_INTEGER), schema))
const NOT_DECIMAL = { error: 'must be a number written in decimal digits, e.g. 1.5' }
const NOT_INTEGER = { error: 'must be an integer written in decimal digits, e.g. 2' }
const BOOLEAN_WORDS: Readonly<Record<string, boolean>> = {
  true: true,
  false: false,
  '1': true,
  '0': false,
  yes: true,
  no: false,
  on: true,
  off: false,
}
const formBoolean = (fallback: boolean) =>
  absentIfBlank(
    z.preprocess(
      (value) =>
        typeof value === 'string' ? (BOOLEAN_WORDS[value.toLowerCase()] ?? value) : value,
      z.boolean().default(fallback),
    ),
  )

/** Node labels a runner's node must carry; the `swarm` scheduler places by them. */
export const NodeSelectorSchema = z
  .record(
    z
      .string()
      .regex(NODE_SELECTOR_BOUNDS.key, 'a label name: a letter or _, then letters, digits, . _ -'),
    z
      .string()
      .regex(NODE_SELECTOR_BOUNDS.value, 'a label value: one or more letters, digits, . _ -'),
  )
  .refine((labels) => Object.keys(labels).length <= NODE_SELECTOR_BOUNDS.maxLabels, {
    message: `at most ${NODE_SELECTOR_BOUNDS.maxLabels} labels`,
  })
  .describe(
    'berth: node labels the nodes running this model must carry, e.g. {"gpu": "a100"} (the swarm scheduler places by them; {}: any node)',
  )

/** Longest node selector read from a form field (JSON text). */
const MAX_SELECTOR_TEXT = 4096

/** A form field holding a JSON object; text that is not one stays text, and the schema says so. */
const jsonObjectOf = (value: unknown) => {
  if (typeof value !== 'string' || value.length > MAX_SELECTOR_TEXT) return value
  try {
    return JSON.parse(value) as unknown
  } catch {
    return value
  }
}

function isUnpackedArchive(value: unknown): value is UnpackedArchive {
  return typeof value === 'object' && value !== null && 'path' in value && 'inspected' in value
}

/**
 * The upload form: Mixpeek's OpenAPI body (same fields, types, enums, defaults, required list)
 * plus berth's `deploy` and serving settings, with the bounds berth enforces. The route streams
 * the parts, then checks what it collected (the text fields, and `file` as the archive it
 * staged) against this schema, so the document states exactly what is enforced.
 */
export const UploadModelBodySchema = z.object({
  file: z.custom<UnpackedArchive>(isUnpackedArchive).meta({
    type: 'string',
    format: 'binary',
    title: 'File',
    description: 'Model archive (.tar.gz)',
  }),
  name: z
    .string()
    .regex(
      MODEL_NAME_PATTERN,
      'must be 3–64 characters: a letter, then letters, digits, "_" or "-"',
    )
    .meta({ title: 'Name', description: 'Model name' }),
  version: z
    .string()
    .regex(MODEL_VERSION_PATTERN, 'must be MAJOR.MINOR.PATCH, e.g. 1.0.0')
    .meta({ title: 'Version', description: 'Model version' }),
  model_format: z.enum(MODEL_FORMATS).meta({ title: 'Model Format', description: 'Model format' }),
  framework: absentIfBlank(z.string().max(128).nullable().optional()).meta({
    title: 'Framework',
    description: 'ML framework (e.g., sentence-transformers)',
  }),
  task_type: absentIfBlank(z.string().max(64).nullable().optional()).meta({
    title: 'Task Type',
    description: 'Task type (e.g., embedding, classification)',
  }),
  num_cpus: formNumber(
    z.number(NOT_DECIMAL).min(RESOURCE_BOUNDS.minCpus).max(RESOURCE_BOUNDS.maxCpus).default(1),
  ).meta({
    title: 'Num Cpus',
    description: 'CPU requirements',
  }),
  num_gpus: formInteger(
    z.number(NOT_INTEGER).int().min(0).max(RESOURCE_BOUNDS.maxGpus).default(0),
  ).meta({
    title: 'Num Gpus',
    description: 'GPU requirements',
  }),
  memory_gb: formNumber(
    z
      .number(NOT_DECIMAL)
      .min(RESOURCE_BOUNDS.minMemoryGb)
      .max(RESOURCE_BOUNDS.maxMemoryGb)
      .default(4),
  ).meta({
    title: 'Memory Gb',
    description: 'Memory in GB',
  }),
  deploy: formBoolean(true).meta({
    title: 'Deploy',
    description:
      'berth: deploy right after upload (default true); false with load_policy on_demand (its default then) serves the model on its first request',
  }),
  load_policy: absentIfBlank(z.enum(LOAD_POLICIES).optional()).meta({
    title: 'Load Policy',
    description:
      'berth: eager loads on deploy and keeps the model loaded; on_demand loads it on its first request (or on deploy) and unloads it when idle or evicted for memory (default: eager with deploy, on_demand without)',
  }),
  idle_timeout_s: formInteger(
    z.number(NOT_INTEGER).int().min(0).max(MAX_IDLE_TIMEOUT_S).optional(),
  ).meta({
    title: 'Idle Timeout S',
    description:
      "berth: for on_demand, seconds without a request before the model is unloaded; 0: never (default: the server's BERTH_IDLE_TIMEOUT_S)",
  }),
  node_selector: absentIfBlank(z.preprocess(jsonObjectOf, NodeSelectorSchema.optional())).meta({
    title: 'Node Selector',
    description:
      'berth: node labels (a JSON object) the nodes running this model must carry, e.g. {"gpu": "a100"}; the swarm scheduler places by them (default: any node)',
  }),
  max_batch_size: formInteger(
    z.number(NOT_INTEGER).int().min(1).max(MAX_BATCH_SIZE).optional(),
  ).meta({
    title: 'Max Batch Size',
    description:
      'berth: most rows run together by dynamic batching (default: 32 when every input has a dynamic first dimension, else 1)',
  }),
  max_queue_delay_us: formInteger(
    z.number(NOT_INTEGER).int().min(0).max(MAX_QUEUE_DELAY_US).default(0),
  ).meta({
    title: 'Max Queue Delay Us',
    description: 'berth: how long a lone request may wait for others to batch with, in µs',
  }),
  replicas: formInteger(z.number(NOT_INTEGER).int().min(1).max(MAX_REPLICAS).default(1)).meta({
    title: 'Replicas',
    description:
      'berth: runner processes serving the model, each admitted with the resources above (default 1)',
  }),
})
schemaRegistry.add(UploadModelBodySchema, {
  id: 'Body_upload_model_v1_namespaces__namespace_id__models_post',
})

/** berth's view of a deployment: its state (`domain/deployment-state.ts`), reason and time. */
export const DeploymentSchema = z.object({
  state: z.enum(DEPLOYMENT_STATES),
  desired: z
    .enum(['deployed', 'on_demand', 'not_deployed'])
    .describe(
      'what was asked: deployed (eager), on_demand (served, loaded when used) or not_deployed',
    ),
  reason: z.string().describe('machine-readable, e.g. insufficient_memory, idle, runner_crashed'),
  since: z.string().describe('when the state was entered'),
  message: z.string().nullable().describe('detail for the reason, e.g. the load error'),
  replicas: z.number().int().describe('runner processes serving the model now'),
})
schemaRegistry.add(DeploymentSchema, { id: 'Deployment' })

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
  // berth: the deployment with its reason (e.g. pending: insufficient_cpu). Always sent; not in
  // `required`, so the required fields stay exactly Mixpeek's.
  deployment: DeploymentSchema.optional(),
})
schemaRegistry.add(ModelUploadResponseSchema, { id: 'ModelUploadResponse' })

export const ResourceRequirementsSchema = z.object({
  num_cpus: z.number(),
  num_gpus: z.number().int(),
  memory: z.number().int().describe('bytes'),
})

/** How a model is served: the settings of its upload or its last deploy. */
export const ServingSchema = z.object({
  max_batch_size: z.number().int().nullable().describe('null: automatic'),
  max_queue_delay_us: z.number().int(),
  replicas: z.number().int().describe('runner processes wanted (deployment.replicas: running now)'),
  load_policy: z.enum(LOAD_POLICIES),
  idle_timeout_s: z
    .number()
    .int()
    .nullable()
    .describe("on_demand: seconds idle before unloading; 0: never; null: the server's default"),
  node_selector: z
    .record(z.string(), z.string())
    .describe("node labels its runners' nodes must carry ({}: any node)"),
})

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
  // berth: what a dashboard shows per model without a request per model. Always sent; not in
  // `required`, so the required fields stay exactly Mixpeek's.
  runtime: z.string().optional().describe('the runtime that serves it: onnx, torch or weights'),
  deployment: DeploymentSchema.optional(),
  resource_requirements: ResourceRequirementsSchema.optional(),
  serving: ServingSchema.optional(),
})
schemaRegistry.add(ModelListItemSchema, { id: 'ModelListItem' })

export const ModelListResponseSchema = z.object({
  success: z.boolean(),
  models: z.array(ModelListItemSchema),
  total: z.number().int(),
  namespace_id: z.string(),
})
schemaRegistry.add(ModelListResponseSchema, { id: 'ModelListResponse' })

export const TensorSpecSchema = z.object({
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
  resource_requirements: ResourceRequirementsSchema,
  input_schema: z.object({ inputs: z.array(TensorSpecSchema) }).nullable(),
  output_schema: z.object({ outputs: z.array(TensorSpecSchema) }).nullable(),
  deployment: DeploymentSchema,
  serving: ServingSchema,
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

const MIXPEEK_STATUS = z.enum(['deployed', 'pending', 'failed', 'not_deployed'])

export const ModelDeployResponseSchema = z.object({
  success: z.boolean(),
  model_id: z.string(),
  namespace_id: z.string(),
  deployment_status: MIXPEEK_STATUS.describe(
    'the state, with loading and unloading shown as pending',
  ),
  cached: z.boolean().describe('the model was already deployed: nothing was loaded'),
  message: z.string(),
  deployment: DeploymentSchema,
})
schemaRegistry.add(ModelDeployResponseSchema, { id: 'ModelDeployResponse' })

export const ModelUndeployResponseSchema = z.object({
  success: z.boolean(),
  model_id: z.string(),
  namespace_id: z.string(),
  deployment_status: MIXPEEK_STATUS,
  message: z.string(),
  deployment: DeploymentSchema,
})
schemaRegistry.add(ModelUndeployResponseSchema, { id: 'ModelUndeployResponse' })

export const WaitQuerySchema = z.object({
  wait: z
    .enum(['true', 'false'])
    .default('false')
    .describe('block until the deployment is deployed or failed (bounded by the server)'),
})

/** Optional on deploy: new serving settings (a deployed model is redeployed with them). */
export const DeployBodySchema = z
  .object({
    max_batch_size: z.number().int().min(1).max(MAX_BATCH_SIZE).nullable().optional(),
    max_queue_delay_us: z.number().int().min(0).max(MAX_QUEUE_DELAY_US).optional(),
    replicas: z.number().int().min(1).max(MAX_REPLICAS).optional(),
    load_policy: z.enum(LOAD_POLICIES).optional(),
    idle_timeout_s: z.number().int().min(0).max(MAX_IDLE_TIMEOUT_S).nullable().optional(),
    node_selector: NodeSelectorSchema.optional(),
  })
  .strict()
  .nullable()
  .optional()
schemaRegistry.add(DeployBodySchema, { id: 'DeployRequest' })

export const DeployQuerySchema = WaitQuerySchema.extend({
  reload: z
    .enum(['true', 'false'])
    .default('false')
    .describe('redeploy an already deployed model: load a fresh runner, then stop the old one'),
})
