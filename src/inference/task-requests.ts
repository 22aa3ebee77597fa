import type { Model } from '../domain/model.js'
import { type TaskSpec, TEXT_INPUT, taskOf } from '../domain/serving-plan.js'
import { BerthError } from '../errors/berth-error.js'
import type { WireTensor } from '../tensors/tensor.js'
import { decodeStrings, encodeStrings } from '../tensors/tensor-data.js'
import type { EncodedResponse } from './oip-codec.js'

/** Most texts in one task request, and the longest text. */
export const MAX_TASK_TEXTS = 256
export const MAX_TEXT_CHARS = 100_000

/**
 * A task body's texts (`{"input": [...]}`) for a model with a task pipeline. Throws
 * `task_not_supported` for a model without one, `infer_request_invalid` for texts out of bounds.
 */
export function taskRequest(
  model: Model,
  input: unknown,
): { task: Pick<TaskSpec, 'kind'>; texts: string[] } {
  const task = taskOf(model)
  if (task === undefined) {
    throw new BerthError(
      'task_not_supported',
      `model "${model.modelId}" takes Open Inference Protocol tensors ({"inputs": [...]}); a text body ({"input": [...]}) needs a tokenizer.json and task_type embedding or classification`,
      { details: { model_id: model.modelId, task_type: model.taskType } },
    )
  }
  if (
    !Array.isArray(input) ||
    input.length === 0 ||
    input.length > MAX_TASK_TEXTS ||
    !input.every((t) => typeof t === 'string' && t.length <= MAX_TEXT_CHARS)
  ) {
    throw new BerthError(
      'infer_request_invalid',
      `"input" must be an array of 1 to ${MAX_TASK_TEXTS} strings of at most ${MAX_TEXT_CHARS} characters`,
    )
  }
  return { task, texts: input as string[] }
}

/** The texts as the task pipeline's one input. */
export function textTensor(texts: readonly string[]): WireTensor {
  return { name: TEXT_INPUT, datatype: 'BYTES', shape: [texts.length], data: encodeStrings(texts) }
}

/**
 * The pipeline's outputs for `count` texts as the answer: `{embeddings, dimensions}` or
 * `{predictions}` (labels with scores, best first). Throws `inference_failed` for outputs that
 * are not FP32.
 */
export function taskAnswer(
  task: Pick<TaskSpec, 'kind'>,
  count: number,
  outputs: readonly WireTensor[],
): EncodedResponse {
  const byName = new Map(outputs.map((o) => [o.name, o]))
  const rows = (tensor: WireTensor | undefined, width: number): number[][] => {
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
  if (task.kind === 'embedding') {
    const embeddings = byName.get('embeddings')
    const dimensions = embeddings?.shape[1] ?? 0
    return json({ embeddings: rows(embeddings, dimensions), dimensions })
  }
  const labels = decodeStrings(byName.get('labels')?.data ?? new Uint8Array()) ?? []
  const predictions = rows(byName.get('scores'), labels.length).map((scores) =>
    labels
      .map((label, i) => ({ label, score: scores[i] as number }))
      .sort((a, b) => b.score - a.score),
  )
  return json({ predictions })
}

function json(value: unknown): EncodedResponse {
  return {
    body: Buffer.from(JSON.stringify(value)),
    contentType: 'application/json',
    headerLength: undefined,
  }
}
