/**
 * Tensors as berth carries them between clients, the server and runner processes: Open
 * Inference Protocol datatypes, shapes and raw little-endian bytes. This folder is a leaf: the
 * data plane, the runners and the converter all build on it, and it imports nothing of theirs.
 */

/** Every Open Inference Protocol datatype. */
export const DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BF16',
  'BYTES',
] as const

export type Datatype = (typeof DATATYPES)[number]

/** The datatypes whose elements have one size, and that berth encodes from JSON and back. */
export type FixedDatatype = Exclude<Datatype, 'BYTES' | 'BF16'>

/** Bytes per element, per fixed-size datatype. */
export const ITEM_BYTES: Readonly<Record<FixedDatatype, number>> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
}

const KNOWN: ReadonlySet<string> = new Set(DATATYPES)

/** Whether an untrusted value names a datatype (an own name: never `constructor` and the like). */
export function isDatatype(value: unknown): value is Datatype {
  return typeof value === 'string' && KNOWN.has(value)
}

/** Whether `datatype` is one berth encodes element by element (an own key of `ITEM_BYTES`). */
export function isFixedDatatype(datatype: string): datatype is FixedDatatype {
  return Object.hasOwn(ITEM_BYTES, datatype)
}

/** How many elements a tensor of `shape` holds (1 for a scalar, `[]`). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

/** A tensor on the wire: its datatype, shape, and raw little-endian bytes. */
export interface WireTensor {
  readonly name: string
  readonly datatype: Datatype
  readonly shape: readonly number[]
  readonly data: Uint8Array
}

/**
 * A datatype as a model declares it: an OIP datatype; `ANY` where the model does not say
 * (TorchScript); for types without an OIP name (described, never served) `ONNX_<n>` (the graph's
 * element type), `ORT_<type>` (ONNX Runtime's name) or `UNSUPPORTED` (not a tensor at all).
 */
export type DeclaredDatatype =
  | Datatype
  | typeof ANY_DATATYPE
  | 'UNSUPPORTED'
  | `ONNX_${number}`
  | `ORT_${string}`

/** The datatype of an input whose signature does not say (TorchScript); its shape is `['*']`. */
export const ANY_DATATYPE = 'ANY'

/** One input or output of a model: shape entries are sizes, or names for dynamic dims. */
export interface TensorSpec {
  readonly name: string
  readonly datatype: DeclaredDatatype
  readonly shape: readonly (number | string)[]
}

/** The inputs and outputs of a loaded model. */
export interface Signature {
  readonly inputs: readonly TensorSpec[]
  readonly outputs: readonly TensorSpec[]
}
