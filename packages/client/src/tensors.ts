/**
 * Tensors as typed arrays, and the Open Inference Protocol's binary form of them (the KServe
 * binary tensor extension): a JSON header, then each tensor's raw little-endian bytes.
 */

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array

/** The Open Inference Protocol's datatypes. */
export type Datatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES'

/**
 * A tensor: its values (a typed array, or strings for `BYTES`) and shape. `datatype` is read
 * from the array unless given: give it for `BOOL` and `FP16` (held in a `Uint8Array` and a
 * `Uint16Array` of raw halves), which share their arrays with `UINT8` and `UINT16`.
 */
export interface Tensor {
  readonly data: TypedArray | readonly string[]
  readonly shape: readonly number[]
  readonly datatype?: Datatype
}

/** A tensor as an answer holds it: its datatype always said. */
export interface OutputTensor extends Tensor {
  readonly datatype: Datatype
}

const ARRAYS: Readonly<Record<Exclude<Datatype, 'BYTES'>, new (b: ArrayBuffer) => TypedArray>> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
}

/** The datatype a tensor is sent as. */
export function datatypeOf(tensor: Tensor): Datatype {
  if (tensor.datatype !== undefined) return tensor.datatype
  const { data } = tensor
  if (Array.isArray(data)) return 'BYTES'
  if (data instanceof Float32Array) return 'FP32'
  if (data instanceof Float64Array) return 'FP64'
  if (data instanceof Int8Array) return 'INT8'
  if (data instanceof Int16Array) return 'INT16'
  if (data instanceof Int32Array) return 'INT32'
  if (data instanceof BigInt64Array) return 'INT64'
  if (data instanceof Uint16Array) return 'UINT16'
  if (data instanceof Uint32Array) return 'UINT32'
  if (data instanceof BigUint64Array) return 'UINT64'
  return 'UINT8'
}

/** A tensor's values as the binary extension carries them (strings: u32 LE length + UTF-8 each). */
export function tensorBytes(tensor: Tensor): Uint8Array {
  const { data } = tensor
  if (!Array.isArray(data)) {
    const typed = data as TypedArray
    return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength)
  }
  const parts = (data as readonly string[]).map((s) => Buffer.from(s, 'utf8'))
  const out = Buffer.alloc(parts.reduce((n, p) => n + 4 + p.length, 0))
  let offset = 0
  for (const part of parts) {
    out.writeUInt32LE(part.length, offset)
    part.copy(out, offset + 4)
    offset += 4 + part.length
  }
  return out
}

/** The values of `bytes` (a copy, aligned) as `datatype` holds them. */
export function tensorFromBytes(
  datatype: Datatype,
  shape: readonly number[],
  bytes: Uint8Array,
): OutputTensor {
  if (datatype === 'BYTES') {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const strings: string[] = []
    for (let offset = 0; offset + 4 <= buffer.length; ) {
      const length = buffer.readUInt32LE(offset)
      strings.push(buffer.subarray(offset + 4, offset + 4 + length).toString('utf8'))
      offset += 4 + length
    }
    return { datatype, shape, data: strings }
  }
  const copy = new Uint8Array(bytes.byteLength)
  copy.set(bytes)
  return { datatype, shape, data: new ARRAYS[datatype](copy.buffer) }
}
