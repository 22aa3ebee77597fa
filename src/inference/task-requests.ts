import type { Model } from '../domain/model.js'
import {
  type TaskSpec,
  TEXT_INPUT,
  TOKEN_COUNTS_OUTPUT,
  TOKEN_IDS_INPUT,
  TOKEN_LENGTHS_INPUT,
  TRUNCATED_OUTPUT,
  taskOf,
} from '../domain/serving-plan.js'
import { BerthError } from '../errors/berth-error.js'
import type { WireTensor } from '../tensors/tensor.js'
import { decodeStrings, encodeStrings, int64Values } from '../tensors/tensor-data.js'
import type { EncodedResponse } from './oip-codec.js'

/** Most texts in one task request, and the longest text. */
export const MAX_TASK_TEXTS = 256
export const MAX_TEXT_CHARS = 100_000
/**
 * Most token ids in one request: a model reads a few hundred to a few thousand per text, and
 * what is past its length is cut anyway.
 */
const MAX_TOKEN_IDS = MAX_TASK_TEXTS * 8192

/**
 * A task request's texts, for a model with a task pipeline: strings, or rows of the model's
 * token ids (special tokens included) as a tokenizer made them elsewhere. Throws
 * `task_not_supported` for a model without a pipeline, `infer_request_invalid` for texts out of
 * bounds.
 */
export function taskRequest(
  model: Model,
  input: unknown,
): { task: Pick<TaskSpec, 'kind'>; count: number; tensors: WireTensor[] } {
  const task = taskOf(model)
  if (task === undefined) {
    throw new BerthError(
      'task_not_supported',
      `model "${model.modelId}" takes Open Inference Protocol tensors ({"inputs": [...]}); texts need a tokenizer.json and task_type embedding or classification`,
      { details: { model_id: model.modelId, task_type: model.taskType } },
    )
  }
  if (Array.isArray(input) && input.length > 0 && input.length <= MAX_TASK_TEXTS) {
    if (input.every((t) => typeof t === 'string' && t.length <= MAX_TEXT_CHARS)) {
      return { task, count: input.length, tensors: [textTensor(input as string[])] }
    }
    if (input.every(isTokenRow) && totalIds(input as number[][]) <= MAX_TOKEN_IDS) {
      return { task, count: input.length, tensors: tokenTensors(input as number[][]) }
    }
  }
  throw new BerthError(
    'infer_request_invalid',
    `the texts must be 1 to ${MAX_TASK_TEXTS} strings of at most ${MAX_TEXT_CHARS} characters, or as many arrays of token ids (at least one each, ${MAX_TOKEN_IDS} in all)`,
  )
}

/** The texts as the task pipeline's one input. */
export function textTensor(texts: readonly string[]): WireTensor {
  return { name: TEXT_INPUT, datatype: 'BYTES', shape: [texts.length], data: encodeStrings(texts) }
}

/** Token rows as the task pipeline's two inputs: the ids one row after another, and the lengths. */
function tokenTensors(rows: readonly (readonly number[])[]): WireTensor[] {
  // Written straight into their typed arrays: no flattened copy, no BigInt per id held.
  const ids = new BigInt64Array(totalIds(rows))
  let at = 0
  for (const row of rows) for (const id of row) ids[at++] = BigInt(id)
  const lengths = BigInt64Array.from(rows, (row) => BigInt(row.length))
  return [
    { name: TOKEN_IDS_INPUT, datatype: 'INT64', shape: [ids.length], data: bytes(ids) },
    { name: TOKEN_LENGTHS_INPUT, datatype: 'INT64', shape: [rows.length], data: bytes(lengths) },
  ]
}

function totalIds(rows: readonly (readonly number[])[]): number {
  return rows.reduce((sum, row) => sum + row.length, 0)
}

function isTokenRow(row: unknown): boolean {
  return (
    Array.isArray(row) &&
    row.length > 0 &&
    row.length <= MAX_TEXT_CHARS &&
    row.every((id) => Number.isSafeInteger(id) && id >= 0 && id < 2 ** 31)
  )
}

function bytes(values: BigInt64Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
}

/** How a caller wants a task's results: each optional, the model's own way when unset. */
export interface TaskParameters {
  /** L2-normalise embeddings (again, after any truncation to `dimensions`). */
  readonly normalize?: boolean
  /** `false`: refuse a text longer than the model reads instead of cutting it. */
  readonly truncate?: boolean
  /** Keep the first `dimensions` of each embedding (Matryoshka-style); at most the model's. */
  readonly dimensions?: number
  /** Keep the `topK` best labels of each classification. */
  readonly topK?: number
}

/** A task's results for its texts, in order, with the tokens the model read of each. */
export type TaskResult =
  | {
      readonly kind: 'embedding'
      readonly embeddings: number[][]
      readonly dimensions: number
      readonly tokens: readonly number[]
    }
  | {
      readonly kind: 'classification'
      readonly predictions: { label: string; score: number }[][]
      readonly tokens: readonly number[]
    }

/**
 * The pipeline's outputs for `count` texts, shaped by `parameters`. Throws `inference_failed`
 * for outputs that are not FP32, `text_too_long` for a text that was cut when `truncate` is
 * false, and `infer_request_invalid` for `dimensions` past the model's.
 */
/** The tokens the pipeline read, all texts together (what a client is told it used). */
export function totalTokens(result: Pick<TaskResult, 'tokens'>): number {
  return result.tokens.reduce((sum, n) => sum + n, 0)
}

export function taskResult(
  task: Pick<TaskSpec, 'kind'>,
  count: number,
  outputs: readonly WireTensor[],
  parameters: TaskParameters = {},
): TaskResult {
  const byName = new Map(outputs.map((o) => [o.name, o]))
  const tokens = Array.from(
    int64Values(byName.get(TOKEN_COUNTS_OUTPUT) ?? { datatype: 'INT64', data: new Uint8Array() }),
    Number,
  )
  const cut = byName.get(TRUNCATED_OUTPUT)?.data ?? new Uint8Array()
  if (parameters.truncate === false && cut.some((flag) => flag !== 0)) {
    const index = cut.findIndex((flag) => flag !== 0)
    throw new BerthError(
      'text_too_long',
      `text ${index} is longer than the ${tokens[index]} tokens the model reads; send a shorter text or allow truncation`,
      { details: { index, max_tokens: tokens[index] } },
    )
  }
  if (task.kind === 'embedding') {
    const tensor = byName.get('embeddings')
    const native = tensor?.shape[1] ?? 0
    const dimensions = parameters.dimensions ?? native
    if (dimensions > native) {
      throw new BerthError(
        'infer_request_invalid',
        `"dimensions" is ${dimensions}; this model's embeddings have ${native}`,
        { details: { dimensions, model_dimensions: native } },
      )
    }
    const embeddings = rows(tensor, count, native).map((row) => {
      const kept = dimensions === native ? row : row.slice(0, dimensions)
      return parameters.normalize === true ? unitLength(kept) : kept
    })
    return { kind: 'embedding', embeddings, dimensions, tokens }
  }
  const labels = decodeStrings(byName.get('labels')?.data ?? new Uint8Array()) ?? []
  const predictions = rows(byName.get('scores'), count, labels.length).map((scores) =>
    labels
      .map((label, i) => ({ label, score: scores[i] as number }))
      .sort((a, b) => b.score - a.score)
      .slice(0, parameters.topK ?? labels.length),
  )
  return { kind: 'classification', predictions, tokens }
}

/**
 * The answer of a task body (`{"input": [...]}`): `{embeddings, dimensions}` or `{predictions}`
 * (labels with scores, best first).
 */
export function taskAnswer(result: TaskResult): EncodedResponse {
  if (result.kind === 'embedding') {
    return json({ embeddings: result.embeddings, dimensions: result.dimensions })
  }
  return json({ predictions: result.predictions })
}

/** `count` rows of `width` FP32 values; throws `inference_failed` for another datatype. */
function rows(tensor: WireTensor | undefined, count: number, width: number): number[][] {
  if (tensor !== undefined && tensor.datatype !== 'FP32') {
    throw new BerthError(
      'inference_failed',
      `the task pipeline answered "${tensor.name}" as ${tensor.datatype}, not FP32`,
    )
  }
  // An aligned copy of the FP32 bytes (a whole number of them: the runner protocol checks
  // every tensor's length against its shape), read as numbers (JSON turns NaN into null).
  const copy = Uint8Array.prototype.slice.call(tensor?.data ?? new Uint8Array())
  const values = new Float32Array(copy.buffer, 0, copy.byteLength / 4)
  return Array.from({ length: count }, (_, r) =>
    Array.from(values.subarray(r * width, (r + 1) * width)),
  )
}

/** The row scaled to length 1 (a zero row stays zero). */
function unitLength(row: readonly number[]): number[] {
  const norm = Math.sqrt(row.reduce((sum, x) => sum + x * x, 0))
  return norm === 0 ? [...row] : row.map((x) => x / norm)
}

function json(value: unknown): EncodedResponse {
  return {
    body: Buffer.from(JSON.stringify(value)),
    contentType: 'application/json',
    headerLength: undefined,
  }
}
