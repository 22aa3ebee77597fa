import { z } from 'zod'
import {
  MAX_BATCH_SIZE,
  MAX_QUEUE_DELAY_US,
  MAX_REPLICAS,
  MODEL_NAME_PATTERN,
  MODEL_VERSION_PATTERN,
  type ServingSettings,
} from '../domain/model.js'
import { MODEL_FORMATS, type ModelFormat } from '../domain/model-format.js'
import { type FieldError, toFieldErrors } from '../errors/berth-error.js'

/** The upload form's fields, parsed. */
export interface UploadFields {
  readonly name: string
  readonly version: string
  readonly format: ModelFormat
  readonly framework: string | null
  readonly taskType: string | null
  readonly numCpus: number
  readonly numGpus: number
  readonly memoryGb: number
  readonly deploy: boolean
  readonly serving: ServingSettings
}

// Multipart fields are strings: numbers and booleans are coerced as FastAPI does, and an empty
// optional field counts as absent.
const optionalText = (max: number) =>
  z.preprocess((v) => (v === '' ? undefined : v), z.string().max(max).nullable().optional())
const numberField = (fallback: number) =>
  z.preprocess((v) => (v === '' || v === undefined ? fallback : v), z.coerce.number())
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

const FieldsSchema = z.object({
  name: z
    .string()
    .regex(
      MODEL_NAME_PATTERN,
      'must be 3–64 characters: a letter, then letters, digits, "_" or "-"',
    ),
  version: z.string().regex(MODEL_VERSION_PATTERN, 'must be MAJOR.MINOR.PATCH, e.g. 1.0.0'),
  model_format: z.enum(MODEL_FORMATS),
  framework: optionalText(128),
  task_type: optionalText(64),
  num_cpus: numberField(1).pipe(z.number().min(0.1).max(64)),
  num_gpus: numberField(0).pipe(z.number().int().min(0).max(8)),
  memory_gb: numberField(4).pipe(z.number().gt(0).max(4096)),
  max_batch_size: z.preprocess(
    (v) => (v === '' || v === undefined ? undefined : v),
    z.coerce.number().int().min(1).max(MAX_BATCH_SIZE).optional(),
  ),
  max_queue_delay_us: numberField(0).pipe(z.number().int().min(0).max(MAX_QUEUE_DELAY_US)),
  replicas: numberField(1).pipe(z.number().int().min(1).max(MAX_REPLICAS)),
  deploy: z.preprocess(
    (v) =>
      v === '' || v === undefined
        ? true
        : typeof v === 'string'
          ? (BOOLEAN_WORDS[v.toLowerCase()] ?? v)
          : v,
    z.boolean(),
  ),
})

/**
 * Parses the upload's text fields, and reports every problem at once (with the missing file,
 * when `hasFile` is false) as FastAPI field errors.
 */
export function parseUploadFields(
  fields: Readonly<Record<string, string>>,
  hasFile: boolean,
): { fields: UploadFields } | { errors: FieldError[] } {
  const result = FieldsSchema.safeParse(fields, { reportInput: true })
  const errors = result.success ? [] : toFieldErrors('body', result.error.issues)
  if (!hasFile) errors.unshift({ loc: ['body', 'file'], msg: 'Field required', type: 'missing' })
  if (!result.success || errors.length > 0) return { errors }
  const f = result.data
  return {
    fields: {
      name: f.name,
      version: f.version,
      format: f.model_format,
      framework: f.framework ?? null,
      taskType: f.task_type ?? null,
      numCpus: f.num_cpus,
      numGpus: f.num_gpus,
      memoryGb: f.memory_gb,
      deploy: f.deploy,
      serving: {
        maxBatchSize: f.max_batch_size ?? null,
        maxQueueDelayUs: f.max_queue_delay_us,
        replicas: f.replicas,
      },
    },
  }
}
