import { type BerthError, isBerthError } from '../errors/berth-error.js'
import type { Runner } from '../scheduler/scheduler.js'
import {
  elementCount,
  ITEM_BYTES,
  isDatatype,
  isFixedDatatype,
  type Signature,
  type WireTensor,
} from '../tensors/tensor.js'
import { encodeStrings } from '../tensors/tensor-data.js'

/** The text a task pipeline (or any string input) is warmed up with. */
const WARM_UP_TEXT = 'warm-up'

/**
 * One request's inputs made from the signature: each named dimension 1, numbers zero, strings a
 * short text. What a model must answer before it is called `deployed`. `undefined` when an
 * input's type is not known (a TorchScript model says none): nothing truthful can be sent.
 */
export function warmUpInputs(signature: Signature): WireTensor[] | undefined {
  const inputs: WireTensor[] = []
  for (const spec of signature.inputs) {
    const { datatype } = spec
    if (!isDatatype(datatype)) return undefined
    const shape = spec.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : 1))
    const count = elementCount(shape)
    const data = isFixedDatatype(datatype)
      ? new Uint8Array(count * ITEM_BYTES[datatype])
      : encodeStrings(new Array<string>(count).fill(WARM_UP_TEXT))
    inputs.push({ name: spec.name, datatype, shape, data })
  }
  return inputs
}

/**
 * Runs one inference on a runner that just loaded its model (first-call allocations and graph
 * optimisation happen here, not in a user's request), so `deployed` means the runner answered.
 * A model that refuses the made-up request (a convolution net whose named dimensions cannot be
 * 1, say) answered all the same: the refusal is returned for the caller to log, and the model
 * serves. A runner that broke throws its own error, which restarts it as a crash would.
 */
export async function warmUp(
  runner: Runner,
  signature: Signature,
  timeoutMs: number,
): Promise<BerthError | undefined> {
  const inputs = warmUpInputs(signature)
  if (inputs === undefined) return undefined
  try {
    await runner.infer(inputs, null, timeoutMs)
    return undefined
  } catch (err) {
    if (isBerthError(err, 'inference_failed')) return err
    throw err
  }
}
