import type { Model } from '../domain/model.js'
import { type TaskSpec, taskOf } from '../domain/serving-plan.js'
import { BerthError } from '../errors/berth-error.js'
import type { Signature, WireTensor } from '../tensors/tensor.js'
import { decodeStrings } from '../tensors/tensor-data.js'
import { checkInputs } from './check-inputs.js'
import type { InferRequest } from './oip-codec.js'
import { MAX_TASK_TEXTS, MAX_TEXT_CHARS } from './task-requests.js'

/**
 * A task model (a tokenizer and task_type embedding or classification) over the Open Inference
 * Protocol: its texts are one `BYTES` input, `text` [-1]; it answers `embeddings` FP32 [-1, -1],
 * or `scores` FP32 [-1, -1] (a softmax per text) and `labels` BYTES [-1] (one per score column).
 * A request that gives the graph's own tensors (input_ids, attention_mask, token_type_ids) runs
 * the graph as before.
 */

/** The name of a task model's text input over the Open Inference Protocol. */
const OIP_TEXT_INPUT = 'text'

/** What the task pipeline's graph may take: a request of only these runs the graph itself. */
const GRAPH_INPUTS: ReadonlySet<string> = new Set(['input_ids', 'attention_mask', 'token_type_ids'])

/** The inputs and outputs a task model shows over the Open Inference Protocol. */
function taskSignature(kind: TaskSpec['kind']): Signature {
  return {
    inputs: [{ name: OIP_TEXT_INPUT, datatype: 'BYTES', shape: ['texts'] }],
    outputs:
      kind === 'embedding'
        ? [{ name: 'embeddings', datatype: 'FP32', shape: ['texts', 'dimensions'] }]
        : [
            { name: 'scores', datatype: 'FP32', shape: ['texts', 'labels'] },
            { name: 'labels', datatype: 'BYTES', shape: ['labels'] },
          ],
  }
}

/** The signature a model shows over the Open Inference Protocol when it has a task. */
export function oipTaskSignature(model: Model): Signature | undefined {
  const task = taskOf(model)
  return task === undefined ? undefined : taskSignature(task.kind)
}

/**
 * The texts of a request to a task model; `undefined` for a model without a task, or a request
 * that gives the graph's own tensors. Throws the 400s of `checkInputs` against the task's
 * signature, `infer_request_invalid` for 0 or more than 256 texts or one past 100 000
 * characters, `input_data_invalid` for elements that are not well framed.
 */
export function oipTexts(model: Model, request: InferRequest): string[] | undefined {
  const task = taskOf(model)
  if (task === undefined || request.inputs.every((t) => GRAPH_INPUTS.has(t.name))) return undefined
  const [text] = checkInputs(taskSignature(task.kind), request.inputs, request.outputs)
  const count = text?.shape[0] ?? 0
  const bounds = `input "${OIP_TEXT_INPUT}" must hold 1 to ${MAX_TASK_TEXTS} texts of at most ${MAX_TEXT_CHARS} characters`
  // Before decoding: a count past the bound costs nothing.
  if (text === undefined || count < 1 || count > MAX_TASK_TEXTS) {
    throw new BerthError('infer_request_invalid', bounds, { details: { input: OIP_TEXT_INPUT } })
  }
  const texts = decodeStrings(text.data)
  if (texts === undefined || texts.length !== count) {
    throw new BerthError(
      'input_data_invalid',
      `input "${OIP_TEXT_INPUT}" is not ${count} length-prefixed strings`,
      { details: { input: OIP_TEXT_INPUT } },
    )
  }
  if (texts.some((t) => t.length > MAX_TEXT_CHARS)) {
    throw new BerthError('infer_request_invalid', bounds, { details: { input: OIP_TEXT_INPUT } })
  }
  return texts
}

/** The outputs asked for (all for `null`), in the order asked. */
export function pickOutputs(
  outputs: readonly WireTensor[],
  requested: readonly string[] | null,
): WireTensor[] {
  // The pipeline's own bookkeeping (berth.token_counts, berth.truncated) is not the model's.
  const shown = outputs.filter((o) => !o.name.startsWith('berth.'))
  if (requested === null) return shown
  return requested.flatMap((name) => shown.filter((o) => o.name === name))
}
