import { BerthError } from '../errors/berth-error.js'
import {
  elementCount,
  ITEM_BYTES,
  isFixedDatatype,
  type Signature,
  type WireTensor,
} from '../tensors/tensor.js'

/**
 * Dim names that name nothing: an ONNX dim with neither size nor name (`?` as berth describes
 * it, `''` or `-1` as ONNX Runtime reports it), TorchScript's `*`. Two of them are not one dim.
 */
const UNNAMED: ReadonlySet<string> = new Set(['?', '', '-1', '*'])

/** What a request brings into a runner. */
export interface RequestBytes {
  /** Its decoded inputs. */
  readonly inputs: number
  /**
   * Its outputs whose size the signature tells from the inputs' shapes (a dim of a fixed size,
   * or named like a dim of an input); the others count 0, so this is never more than they take.
   */
  readonly outputs: number
  /** The largest of those outputs, when there is one. */
  readonly largest?: { readonly name: string; readonly shape: readonly number[] }
}

/**
 * The bytes of a checked request (`checkInputs` passed): its inputs', and the declared size of
 * the outputs asked for (all of them for `null`), with each named dim bound to the size the
 * inputs give it. A name bound to several sizes takes the smallest: the model will refuse or
 * reshape such inputs, and the count must not be more than the outputs take.
 */
export function requestBytes(
  signature: Signature,
  inputs: readonly WireTensor[],
  outputs: readonly string[] | null,
): RequestBytes {
  const bound = new Map<string, number>()
  for (const spec of signature.inputs) {
    const given = inputs.find((t) => t.name === spec.name)
    if (given === undefined || given.shape.length !== spec.shape.length) continue
    for (const [i, dim] of spec.shape.entries()) {
      const size = given.shape[i] as number
      if (typeof dim === 'string' && !UNNAMED.has(dim)) {
        bound.set(dim, Math.min(bound.get(dim) ?? size, size))
      }
    }
  }
  const inputBytes = inputs.reduce((sum, t) => sum + t.data.byteLength, 0)
  let outputBytes = 0
  let largest: { name: string; shape: number[]; bytes: number } | undefined
  for (const spec of signature.outputs) {
    if (outputs !== null && !outputs.includes(spec.name)) continue
    if (!isFixedDatatype(spec.datatype)) continue
    const shape = spec.shape.map((d) => (typeof d === 'number' ? d : bound.get(d)))
    if (!shape.every((d): d is number => d !== undefined)) continue
    const bytes = elementCount(shape) * ITEM_BYTES[spec.datatype]
    outputBytes += bytes
    if (largest === undefined || bytes > largest.bytes) largest = { name: spec.name, shape, bytes }
  }
  return {
    inputs: inputBytes,
    outputs: outputBytes,
    ...(largest === undefined ? {} : { largest: { name: largest.name, shape: largest.shape } }),
  }
}

/** What a deployment takes per request (and per dynamic batch). */
export interface SizeLimits {
  /** The deployment's `memory_gb`: its runner holds the inputs, and each output twice. */
  readonly memoryBytes: number
  /** Most bytes of inputs plus outputs, whatever the memory (`BERTH_MAX_INFER_TENSOR_BYTES`). */
  readonly maxTensorBytes: number
}

/**
 * What a runner must hold at least to answer: the inputs (the message they came in), and each
 * output twice while it is sent (the runtime's buffer and the copy in the answer).
 */
export function heldBytes(bytes: RequestBytes): number {
  return bytes.inputs + 2 * bytes.outputs
}

/**
 * Refuses a request whose tensors cannot fit its deployment, before a runner sees it (413s):
 * `inference_input_too_large` when its decoded inputs alone pass either limit,
 * `inference_output_too_large` when with its declared outputs they do (`heldBytes` past the
 * memory, or inputs plus outputs past `maxTensorBytes`). Returns what it counted.
 */
export function checkSizes(
  signature: Signature,
  inputs: readonly WireTensor[],
  outputs: readonly string[] | null,
  limits: SizeLimits,
): RequestBytes {
  const bytes = requestBytes(signature, inputs, outputs)
  const inputLimit = Math.min(limits.memoryBytes, limits.maxTensorBytes)
  if (bytes.inputs > inputLimit) {
    throw new BerthError(
      'inference_input_too_large',
      `the inputs of this request take ${bytes.inputs} bytes; the model takes at most ${inputLimit}: send fewer rows, or deploy it with more memory_gb`,
      { details: { input_bytes: bytes.inputs, limit_bytes: inputLimit } },
    )
  }
  if (
    heldBytes(bytes) > limits.memoryBytes ||
    bytes.inputs + bytes.outputs > limits.maxTensorBytes
  ) {
    const largest = bytes.largest
    const what =
      largest === undefined ? '' : ` ("${largest.name}" alone is [${largest.shape.join(', ')}])`
    throw new BerthError(
      'inference_output_too_large',
      `the outputs of this request would take ${bytes.outputs} bytes${what}: with its inputs (${bytes.inputs} bytes) more than the model's runner can hold (${limits.memoryBytes} bytes of memory, each output twice while it is sent; at most ${limits.maxTensorBytes} bytes of tensors): send smaller inputs, or deploy it with more memory_gb`,
      {
        details: {
          input_bytes: bytes.inputs,
          output_bytes: bytes.outputs,
          memory_bytes: limits.memoryBytes,
          max_tensor_bytes: limits.maxTensorBytes,
          ...(largest === undefined ? {} : { output: largest.name, shape: [...largest.shape] }),
        },
      },
    )
  }
  return bytes
}
