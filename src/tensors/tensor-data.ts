import { type FixedDatatype, ITEM_BYTES, isFixedDatatype } from './tensor.js'

/**
 * Open Inference Protocol tensor data: raw little-endian bytes ↔ the JSON `data` arrays of the
 * protocol for the fixed-size datatypes; `BYTES` tensors (length-prefixed strings); and the
 * binary16 conversions FP16 needs.
 */

const INT_RANGE: Readonly<Partial<Record<FixedDatatype, readonly [number, number]>>> = {
  UINT8: [0, 2 ** 8 - 1],
  UINT16: [0, 2 ** 16 - 1],
  UINT32: [0, 2 ** 32 - 1],
  INT8: [-(2 ** 7), 2 ** 7 - 1],
  INT16: [-(2 ** 15), 2 ** 15 - 1],
  INT32: [-(2 ** 31), 2 ** 31 - 1],
}

/** Flattens OIP `data` (flat, or nested row-major) into its elements. */
export function flatten(data: readonly unknown[]): unknown[] {
  if (!data.some(Array.isArray)) return data as unknown[]
  // Without recursion: `flat(Infinity)` recurses per level, and a client may nest 100k deep.
  const out: unknown[] = []
  const stack: Array<{ readonly list: readonly unknown[]; at: number }> = [{ list: data, at: 0 }]
  for (let top = stack[0]; top !== undefined; top = stack[stack.length - 1]) {
    if (top.at === top.list.length) {
      stack.pop()
      continue
    }
    const value = top.list[top.at++]
    if (Array.isArray(value)) stack.push({ list: value, at: 0 })
    else out.push(value)
  }
  return out
}

/**
 * Encodes JSON values as the datatype's bytes. Returns an error message naming the first bad
 * element when a value is not of the datatype (a fraction for an integer type, out of range…).
 */
export function encodeValues(datatype: string, values: readonly unknown[]): Uint8Array | string {
  const n = values.length
  if (!isFixedDatatype(datatype)) return `datatype ${datatype} is not supported`
  const item = ITEM_BYTES[datatype]
  const bytes = new Uint8Array(n * item)
  const view = new DataView(bytes.buffer)
  for (let i = 0; i < n; i++) {
    const v = values[i]
    const bad = () => `element ${i} (${shown(v)}) is not a valid ${datatype}`
    switch (datatype) {
      case 'FP32':
        if (typeof v !== 'number') return bad()
        view.setFloat32(i * 4, v, true)
        break
      case 'FP64':
        if (typeof v !== 'number') return bad()
        view.setFloat64(i * 8, v, true)
        break
      case 'FP16':
        if (typeof v !== 'number') return bad()
        view.setUint16(i * 2, toHalf(v), true)
        break
      case 'BOOL':
        if (v !== true && v !== false && v !== 0 && v !== 1) return bad()
        bytes[i] = v === true || v === 1 ? 1 : 0
        break
      case 'INT64':
      case 'UINT64': {
        const big = toBigInt(v)
        const min = datatype === 'INT64' ? -(2n ** 63n) : 0n
        const max = datatype === 'INT64' ? 2n ** 63n - 1n : 2n ** 64n - 1n
        if (big === undefined || big < min || big > max) return bad()
        if (datatype === 'INT64') view.setBigInt64(i * 8, big, true)
        else view.setBigUint64(i * 8, big, true)
        break
      }
      default: {
        const range = INT_RANGE[datatype] as readonly [number, number]
        if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) {
          return bad()
        }
        setInt(view, datatype, i * item, v)
      }
    }
  }
  return bytes
}

/** A bad element as an error message shows it. */
function shown(v: unknown): string {
  // Not a container's JSON: a client's object may be nested deeper than the stack goes.
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'object' && v !== null) return 'an object'
  return JSON.stringify(v) ?? String(v)
}

/** The tensor's elements as JSON text (an array), exact for 64-bit integers. */
export function valuesAsJson(datatype: FixedDatatype, data: Uint8Array): string {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const item = ITEM_BYTES[datatype]
  const n = Math.floor(data.byteLength / item)
  const parts = new Array<string>(n)
  for (let i = 0; i < n; i++) {
    const at = i * item
    switch (datatype) {
      case 'FP32':
        parts[i] = number(view.getFloat32(at, true))
        break
      case 'FP64':
        parts[i] = number(view.getFloat64(at, true))
        break
      case 'FP16':
        parts[i] = number(fromHalf(view.getUint16(at, true)))
        break
      case 'BOOL':
        parts[i] = view.getUint8(at) === 0 ? 'false' : 'true'
        break
      case 'INT64':
        parts[i] = view.getBigInt64(at, true).toString()
        break
      case 'UINT64':
        parts[i] = view.getBigUint64(at, true).toString()
        break
      default:
        parts[i] = String(getInt(view, datatype, at))
    }
  }
  return `[${parts.join(',')}]`
}

/** JSON has no NaN or infinities: they become `null`, as `JSON.stringify` does. */
function number(x: number): string {
  return Number.isFinite(x) ? String(x) : 'null'
}

function toBigInt(v: unknown): bigint | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : undefined
  // Integers past 2^53 do not survive JSON numbers: they may come as decimal strings.
  if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) return BigInt(v)
  return undefined
}

function setInt(view: DataView, datatype: FixedDatatype, at: number, v: number): void {
  switch (datatype) {
    case 'UINT8':
      view.setUint8(at, v)
      return
    case 'UINT16':
      view.setUint16(at, v, true)
      return
    case 'UINT32':
      view.setUint32(at, v, true)
      return
    case 'INT8':
      view.setInt8(at, v)
      return
    case 'INT16':
      view.setInt16(at, v, true)
      return
    default:
      view.setInt32(at, v, true)
      return
  }
}

function getInt(view: DataView, datatype: FixedDatatype, at: number): number {
  switch (datatype) {
    case 'UINT8':
      return view.getUint8(at)
    case 'UINT16':
      return view.getUint16(at, true)
    case 'UINT32':
      return view.getUint32(at, true)
    case 'INT8':
      return view.getInt8(at)
    case 'INT16':
      return view.getInt16(at, true)
    default:
      return view.getInt32(at, true)
  }
}

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** IEEE 754 binary16 bits of `x`, rounded to nearest even. */
export function toHalf(x: number): number {
  f32[0] = x
  const bits = u32[0] as number
  const sign = (bits >>> 16) & 0x8000
  const exp = (bits >>> 23) & 0xff
  let mant = bits & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0)
  let e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  const rounded = f32[0] as number
  if (e <= 0) {
    if (e < -10) return sign
    mant |= 0x800000
    const shift = 14 - e
    const half = mant >>> shift
    const rest = mant & ((1 << shift) - 1)
    const mid = 1 << (shift - 1)
    return sign | (half + (roundsUp(rest, mid, half, x, rounded) ? 1 : 0))
  }
  const rest = mant & 0x1fff
  mant >>>= 13
  if (roundsUp(rest, 0x1000, mant, x, rounded)) {
    mant += 1
    if (mant === 0x400) {
      mant = 0
      e += 1
      if (e >= 0x1f) return sign | 0x7c00
    }
  }
  return sign | (e << 10) | mant
}

/**
 * Whether the half whose dropped bits are `rest` (halfway: `mid`) rounds up from `half`, to
 * nearest, ties to even. `x` reached here as float32 `rounded`: when that rounding landed exactly
 * halfway, the tie is not real, and `x` above or below it says which way to go.
 */
function roundsUp(rest: number, mid: number, half: number, x: number, rounded: number): boolean {
  if (rest !== mid) return rest > mid
  return rounded === x ? (half & 1) === 1 : Math.abs(x) > Math.abs(rounded)
}

/** The number whose binary16 bits are `h`. */
export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >>> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN
  return sign * (1 + mant / 1024) * 2 ** (exp - 15)
}

/** Strings as an OIP `BYTES` tensor's bytes: each a 4-byte little-endian length, then UTF-8. */
export function encodeStrings(values: readonly string[]): Uint8Array {
  const parts = values.map((v) => Buffer.from(v, 'utf8'))
  const out = Buffer.alloc(parts.reduce((n, p) => n + 4 + p.length, 0))
  let at = 0
  for (const part of parts) {
    out.writeUInt32LE(part.length, at)
    part.copy(out, at + 4)
    at += 4 + part.length
  }
  return out
}

/** The strings of a `BYTES` tensor; `undefined` when the bytes are not well framed. */
export function decodeStrings(data: Uint8Array): string[] | undefined {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const out: string[] = []
  let at = 0
  while (at < bytes.length) {
    if (at + 4 > bytes.length) return undefined
    const length = bytes.readUInt32LE(at)
    if (at + 4 + length > bytes.length) return undefined
    out.push(bytes.toString('utf8', at + 4, at + 4 + length))
    at += 4 + length
  }
  return out
}

/**
 * Whether `data` is exactly `count` length-prefixed elements (the framing of a `BYTES` tensor),
 * without decoding them. Stops at the first element that does not fit: a hostile count or length
 * costs no more than the bytes there are.
 */
export function isFramed(data: Uint8Array, count: number): boolean {
  // Each element takes its 4-byte length at least.
  if (!Number.isSafeInteger(count) || count < 0 || count * 4 > data.byteLength) return false
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  let at = 0
  for (let i = 0; i < count; i++) {
    if (at + 4 > data.byteLength) return false
    at += 4 + view.getUint32(at, true)
    if (at > data.byteLength) return false
  }
  return at === data.byteLength
}

/**
 * An INT64 tensor's values, from an aligned copy of its bytes (a view may start anywhere); none
 * for another datatype.
 */
export function int64Values(tensor: {
  readonly datatype: string
  readonly data: Uint8Array
}): BigInt64Array {
  if (tensor.datatype !== 'INT64') return new BigInt64Array()
  const copy = Uint8Array.prototype.slice.call(tensor.data)
  return new BigInt64Array(copy.buffer, 0, Math.floor(copy.byteLength / 8))
}
