import { open } from 'node:fs/promises'
import { BerthError } from '../../errors/berth-error.js'

/** Bytes per element of every safetensors dtype. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
}

/** Headers larger than this are refused before being read (the reference reader's bound). */
export const MAX_HEADER_BYTES = 100_000_000

export interface SafetensorsTensor {
  readonly name: string
  readonly dtype: string
  readonly shape: readonly number[]
  /** Byte offsets in the file (not relative to the data section). */
  readonly start: number
  readonly end: number
}

export interface SafetensorsHeader {
  readonly metadata: Readonly<Record<string, string>>
  readonly tensors: readonly SafetensorsTensor[]
  readonly fileBytes: number
}

/**
 * Reads and strictly checks the header of an untrusted `.safetensors` file, reading only the
 * header bytes: bounded size, UTF-8 JSON object, string metadata, known dtypes, integer shapes
 * whose element count times the item size is exactly the byte span, spans inside the file that
 * tile the data section with no gap, overlap or trailing byte. Throws `safetensors_invalid`.
 */
export async function readSafetensorsHeader(
  path: string,
  label: string,
): Promise<SafetensorsHeader> {
  const fail = (reason: string): BerthError =>
    new BerthError('safetensors_invalid', `${label} is not a valid safetensors file: ${reason}`, {
      details: { file: label, reason },
    })
  const file = await open(path, 'r')
  try {
    const fileBytes = (await file.stat()).size
    if (fileBytes < 8) throw fail('it is shorter than its 8-byte header length')
    const lengthBytes = Buffer.alloc(8)
    await file.read(lengthBytes, 0, 8, 0)
    const headerLength = lengthBytes.readBigUInt64LE(0)
    if (headerLength > BigInt(MAX_HEADER_BYTES)) throw fail('its header is larger than 100 MB')
    const n = Number(headerLength)
    if (8 + n > fileBytes) throw fail('its header runs past the end of the file')
    const headerBytes = Buffer.alloc(n)
    await file.read(headerBytes, 0, n, 8)

    let parsed: unknown
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes))
    } catch {
      throw fail('its header is not UTF-8 JSON')
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw fail('its header is not a JSON object')
    }

    const dataStart = 8 + n
    const metadata: Record<string, string> = {}
    const tensors: SafetensorsTensor[] = []
    for (const [name, info] of Object.entries(parsed)) {
      if (name === '__metadata__') {
        if (typeof info !== 'object' || info === null || Array.isArray(info)) {
          throw fail('__metadata__ is not an object')
        }
        for (const [key, value] of Object.entries(info)) {
          if (typeof value !== 'string') throw fail(`metadata "${key}" is not a string`)
          metadata[key] = value
        }
        continue
      }
      tensors.push(checkTensor(name, info, dataStart, fail))
    }

    // The spans must tile the data section exactly: no hole, no overlap, nothing after.
    let cursor = dataStart
    for (const tensor of [...tensors].sort((a, b) => a.start - b.start || a.end - b.end)) {
      if (tensor.start !== cursor) {
        throw fail(
          `tensor "${tensor.name}" ${tensor.start < cursor ? 'overlaps another' : 'leaves a gap'}`,
        )
      }
      cursor = tensor.end
    }
    if (cursor !== fileBytes) throw fail('the file has bytes after its last tensor')
    return { metadata, tensors, fileBytes }
  } finally {
    await file.close()
  }
}

function checkTensor(
  name: string,
  info: unknown,
  dataStart: number,
  fail: (reason: string) => BerthError,
): SafetensorsTensor {
  if (typeof info !== 'object' || info === null || Array.isArray(info)) {
    throw fail(`tensor "${name}" is not described by an object`)
  }
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>
  if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPE_BYTES)) {
    throw fail(`tensor "${name}" has an unknown dtype`)
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw fail(`tensor "${name}" has a shape that is not a list of non-negative integers`)
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw fail(`tensor "${name}" has invalid data_offsets`)
  }
  const elements = (shape as number[]).reduce((a, b) => a * b, 1)
  const bytes = elements * (SAFETENSORS_DTYPE_BYTES[dtype] ?? 0)
  if (!Number.isSafeInteger(bytes) || bytes !== offsets[1] - offsets[0]) {
    throw fail(`tensor "${name}" has a shape and dtype that do not match its byte span`)
  }
  return {
    name,
    dtype,
    shape: shape as number[],
    start: dataStart + (offsets[0] as number),
    end: dataStart + (offsets[1] as number),
  }
}
