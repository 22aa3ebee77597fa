import { BerthError } from '../errors/berth-error.js'
import type { Signature, WireTensor } from '../tensors/tensor.js'
import { dataAsJson, decodeInferHeader, type InferRequest } from './oip-codec.js'
import type { TaskParameters } from './task-requests.js'

/**
 * Mixpeek's raw inference body (`POST /v1/inference`) in berth's terms: its `inputs` as texts
 * for a task pipeline or as tensors for the model, its `parameters` as task parameters, and the
 * model's outputs back as the answer's `data`.
 */

/**
 * The texts of `{"text": str}` or `{"texts": [str]}`: `undefined` when the inputs hold neither
 * (they are tensors). Throws `infer_request_invalid` for both at once or a text that is not a
 * string (the task checks the count and lengths).
 */
export function textsOf(
  inputs: Readonly<Record<string, unknown>>,
): { texts: unknown; single: boolean } | undefined {
  const hasText = Object.hasOwn(inputs, 'text')
  const hasTexts = Object.hasOwn(inputs, 'texts')
  if (!hasText && !hasTexts) return undefined
  if (hasText && hasTexts) throw invalid('inputs take "text" or "texts", not both')
  if (hasText) {
    if (typeof inputs.text !== 'string') throw invalid('inputs.text must be a string')
    return { texts: [inputs.text], single: true }
  }
  return { texts: inputs.texts, single: false }
}

/**
 * The tensors of `inputs`: each input by name as `{shape, datatype, data}` (the Open Inference
 * Protocol's tensor), or as a plain nested array whose shape is read from its nesting and whose
 * datatype is the model's. A model with one input also takes one plain array under any key
 * (`{"data": [[...]]}`). `output` keeps one output. Throws the 400s of `decodeInferHeader`.
 */
export function tensorRequest(
  signature: Signature | undefined,
  inputs: Readonly<Record<string, unknown>>,
  output: string | undefined,
): InferRequest {
  const entries = Object.entries(inputs)
  if (entries.length === 0) throw invalid('"inputs" is empty: name the model\'s inputs')
  const only = signature?.inputs.length === 1 ? signature.inputs[0] : undefined
  const tensors = entries.map(([key, value]) => {
    const name = entries.length === 1 && Array.isArray(value) && only ? only.name : key
    if (Array.isArray(value)) {
      if (signature === undefined) {
        // A converted model tells its signature once a runner has loaded it.
        throw new BerthError(
          'infer_request_invalid',
          `input "${name}" is a plain array, but this model's inputs are not known until it is loaded: send {"shape", "datatype", "data"}, or deploy it first`,
          { details: { input: name } },
        )
      }
      const spec = signature.inputs.find((t) => t.name === name)
      if (spec === undefined) {
        throw new BerthError(
          'input_unknown',
          `input "${name}" is a plain array, but the model declares no input of that name to take its datatype from; send {"shape", "datatype", "data"}`,
          { details: { input: name, expected: signature.inputs.map((t) => t.name) } },
        )
      }
      return { name, datatype: spec.datatype, shape: shapeOf(value), data: value }
    }
    if (typeof value !== 'object' || value === null) {
      throw invalid(`inputs.${key} must be a tensor ({"shape", "datatype", "data"}) or an array`)
    }
    return { ...(value as Record<string, unknown>), name }
  })
  const header = {
    inputs: tensors,
    ...(output === undefined ? {} : { outputs: [{ name: output }] }),
  }
  return decodeInferHeader(header, Buffer.alloc(0))
}

/**
 * The model's outputs as the answer's `data`, JSON text: `{name: {datatype, shape, data}}`,
 * written as `/v2` writes outputs (exact 64-bit integers), never parsed back.
 */
export function tensorDataJson(outputs: readonly WireTensor[]): string {
  const entries = outputs.map(
    (t) =>
      `${JSON.stringify(t.name)}:{"datatype":${JSON.stringify(t.datatype)},"shape":${JSON.stringify(t.shape)},"data":${dataAsJson(t)}}`,
  )
  return `{${entries.join(',')}}`
}

/**
 * `parameters` a task pipeline uses: `normalize`, `truncate` (booleans), `dimensions`, `top_k`
 * (positive integers). Others (an LLM's `temperature`…) mean nothing to an encoder and are
 * ignored. Throws `infer_request_invalid` for a known one of the wrong type.
 */
export function taskParametersOf(
  parameters: Readonly<Record<string, unknown>> | null | undefined,
): TaskParameters {
  const p = parameters ?? {}
  const flag = (key: string) => {
    const value = p[key]
    if (value === undefined || value === null) return undefined
    if (typeof value !== 'boolean') throw invalid(`parameters.${key} must be true or false`)
    return value
  }
  const count = (key: string) => {
    const value = p[key]
    if (value === undefined || value === null) return undefined
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      throw invalid(`parameters.${key} must be a positive integer`)
    }
    return value as number
  }
  const normalize = flag('normalize')
  const truncate = flag('truncate')
  const dimensions = count('dimensions')
  const topK = count('top_k')
  return {
    ...(normalize === undefined ? {} : { normalize }),
    ...(truncate === undefined ? {} : { truncate }),
    ...(dimensions === undefined ? {} : { dimensions }),
    ...(topK === undefined ? {} : { topK }),
  }
}

/** The shape of a nested array, read down its first elements (a ragged one fails the count). */
function shapeOf(value: readonly unknown[]): number[] {
  const shape: number[] = []
  let level: unknown = value
  while (Array.isArray(level)) {
    shape.push(level.length)
    level = level[0]
  }
  return shape
}

function invalid(message: string): BerthError {
  return new BerthError('infer_request_invalid', message)
}
