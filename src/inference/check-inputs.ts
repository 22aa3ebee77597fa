import { BerthError } from '../errors/berth-error.js'
import {
  ANY_DATATYPE,
  elementCount,
  type Signature,
  type TensorSpec,
  type WireTensor,
} from '../tensors/tensor.js'

/**
 * Checks a request against the model's signature before it reaches a runner, so a bad input is
 * a 400, never a 500: every input known, none missing, datatype, rank and fixed dims as
 * declared; requested outputs exist.
 * Strict where it protects the user, lenient where ONNX Runtime is: a one-element tensor is
 * accepted (and reshaped) where the model declares a scalar. Returns the inputs in the model's
 * order. Throws 400s naming the input: `input_unknown`, `input_missing`,
 * `input_datatype_mismatch`, `input_shape_mismatch`, `output_unknown`.
 */
export function checkInputs(
  signature: Signature,
  inputs: readonly WireTensor[],
  outputs: readonly string[] | null,
): WireTensor[] {
  const given = new Map(inputs.map((t) => [t.name, t]))
  const declared = new Set(signature.inputs.map((s) => s.name))
  for (const t of inputs) {
    if (!declared.has(t.name)) {
      throw new BerthError(
        'input_unknown',
        `the model has no input "${t.name}"; its inputs are ${list(declared)}`,
        { details: { input: t.name, expected: [...declared] } },
      )
    }
  }
  const checked = signature.inputs.map((spec) => {
    const t = given.get(spec.name)
    if (t === undefined) {
      throw new BerthError('input_missing', `input "${spec.name}" is missing`, {
        details: { input: spec.name },
      })
    }
    // A TorchScript signature names its inputs but not their datatypes or shapes.
    if (spec.datatype === ANY_DATATYPE) return t
    if (t.datatype !== spec.datatype) {
      throw new BerthError(
        'input_datatype_mismatch',
        `input "${spec.name}" must be ${spec.datatype}, got ${t.datatype}`,
        { details: { input: spec.name, expected: spec.datatype, got: t.datatype } },
      )
    }
    return checkShape(spec, t)
  })
  if (outputs !== null) {
    const known = new Set(signature.outputs.map((s) => s.name))
    for (const name of outputs) {
      if (!known.has(name)) {
        throw new BerthError(
          'output_unknown',
          `the model has no output "${name}"; its outputs are ${list(known)}`,
          { details: { output: name, expected: [...known] } },
        )
      }
    }
  }
  return checked
}

function checkShape(spec: TensorSpec, t: WireTensor): WireTensor {
  const elements = elementCount(t.shape)
  if (spec.shape.length === 0) {
    if (elements === 1) return t.shape.length === 0 ? t : { ...t, shape: [] }
    throw mismatch(spec, t, 'must be a scalar (shape [] or one element)')
  }
  if (t.shape.length !== spec.shape.length) {
    throw mismatch(spec, t, `must have ${spec.shape.length} dimensions`)
  }
  for (const [i, dim] of spec.shape.entries()) {
    if (typeof dim === 'number' && t.shape[i] !== dim) {
      throw mismatch(spec, t, `dimension ${i} must be ${dim}`)
    }
  }
  return t
}

function mismatch(spec: TensorSpec, t: WireTensor, problem: string): BerthError {
  const shown = spec.shape.map((d) => (typeof d === 'number' ? d : -1))
  return new BerthError(
    'input_shape_mismatch',
    `input "${spec.name}" ${problem}: the model declares [${shown.join(', ')}], got [${t.shape.join(', ')}]`,
    { details: { input: spec.name, expected: shown, got: [...t.shape] } },
  )
}

function list(names: ReadonlySet<string>): string {
  return [...names].map((n) => `"${n}"`).join(', ')
}
