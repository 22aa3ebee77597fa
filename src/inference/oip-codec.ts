import { BerthError } from '../errors/berth-error.js'
import { elementCount, ITEM_BYTES, isFixedDatatype, type WireTensor } from '../tensors/tensor.js'
import {
  decodeStrings,
  encodeStrings,
  encodeValues,
  flatten,
  isFramed,
  valuesAsJson,
} from '../tensors/tensor-data.js'

/**
 * The Open Inference Protocol (KServe v2) request and response bodies, JSON and with the binary
 * tensor extension: a JSON header of `Inference-Header-Content-Length` bytes, then the raw
 * tensors of every input that says `parameters.binary_data_size`, in order.
 */

/** An inference request, decoded: tensors as raw bytes whatever way they arrived. */
export interface InferRequest {
  readonly id: string | undefined
  readonly inputs: readonly WireTensor[]
  /** Outputs asked for by name, or `null` for all of them. */
  readonly outputs: readonly string[] | null
  /** Which outputs to answer as binary: names, or `true` for all. */
  readonly binaryOutputs: ReadonlySet<string> | true
}

/** What the transport needs to send back: a body, its type, and the binary header length. */
export interface EncodedResponse {
  readonly body: Buffer
  readonly contentType: 'application/json' | 'application/octet-stream'
  /** Set when the body carries binary tensors after its JSON header. */
  readonly headerLength: number | undefined
}

/**
 * Decodes a request body. `headerLength` is the `Inference-Header-Content-Length` value when
 * the client sent one. Throws 400s: `infer_request_invalid` for the envelope, and
 * `input_data_invalid` naming the input whose data does not match its datatype and shape.
 */
export function decodeInferRequest(body: Buffer, headerLength: number | undefined): InferRequest {
  const { header, binary } = parseInferBody(body, headerLength)
  return decodeInferHeader(header, binary)
}

/**
 * Splits a request body into its JSON object (the whole body, or the first `headerLength`
 * bytes) and the binary tensor bytes after it. Throws `infer_request_invalid`.
 */
export function parseInferBody(
  body: Buffer,
  headerLength: number | undefined,
): { header: Record<string, unknown>; binary: Buffer } {
  if (headerLength !== undefined && (headerLength < 0 || headerLength > body.length)) {
    throw invalid(`Inference-Header-Content-Length ${headerLength} is outside the body`)
  }
  const jsonEnd = headerLength ?? body.length
  let header: unknown
  try {
    header = JSON.parse(body.subarray(0, jsonEnd).toString('utf8'))
  } catch {
    throw invalid('the request body (or its JSON header) is not valid JSON')
  }
  if (!isRecord(header)) throw invalid('the request must be a JSON object')
  return { header, binary: body.subarray(jsonEnd) }
}

/** Decodes a parsed OIP request (see `decodeInferRequest`). */
export function decodeInferHeader(header: Record<string, unknown>, binary: Buffer): InferRequest {
  if (!Array.isArray(header.inputs) || header.inputs.length === 0) {
    throw invalid('"inputs" must be a non-empty array of tensors')
  }
  let offset = 0
  const names = new Set<string>()
  const inputs = header.inputs.map((raw: unknown, index: number): WireTensor => {
    if (!isRecord(raw) || typeof raw.name !== 'string' || raw.name === '') {
      throw invalid(`inputs[${index}] must be an object with a "name"`)
    }
    const name = raw.name
    if (names.has(name)) throw invalid(`input "${name}" is given twice`)
    names.add(name)
    if (typeof raw.datatype !== 'string') throw dataInvalid(name, 'has no "datatype"')
    const datatype = raw.datatype
    const shape = raw.shape
    if (
      !Array.isArray(shape) ||
      !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)
    ) {
      throw dataInvalid(name, '"shape" must be an array of non-negative integers')
    }
    const count = elementCount(shape as number[])
    const parameters = isRecord(raw.parameters) ? raw.parameters : {}
    const binarySize = parameters.binary_data_size
    if (datatype === 'BYTES') {
      const tensor = { name, datatype, shape: shape as number[] } as const
      if (binarySize === undefined) return { ...tensor, data: jsonStrings(name, raw.data, count) }
      const data = binaryPart(binary, offset, byteSize(name, binarySize))
      offset += data.byteLength
      if (!isFramed(data, count)) {
        throw dataInvalid(
          name,
          `binary data is not ${count} elements of a 4-byte little-endian length and that many bytes`,
        )
      }
      return { ...tensor, data }
    }
    // An own key of the table: `constructor` and the like are not datatypes.
    if (!isFixedDatatype(datatype)) {
      throw dataInvalid(name, `datatype ${datatype} is not supported`)
    }
    const item = ITEM_BYTES[datatype]
    if (binarySize !== undefined) {
      const size = byteSize(name, binarySize)
      if (size !== count * item) {
        throw dataInvalid(
          name,
          `binary_data_size ${size} does not match shape [${shape.join(', ')}] of ${datatype} (${count * item} bytes)`,
        )
      }
      const data = binaryPart(binary, offset, size)
      offset += size
      return { name, datatype, shape: shape as number[], data }
    }
    if (!Array.isArray(raw.data)) {
      throw dataInvalid(name, 'needs "data", or parameters.binary_data_size with binary data')
    }
    const values = flatten(raw.data)
    if (values.length !== count) {
      throw dataInvalid(
        name,
        `has ${values.length} elements; shape [${shape.join(', ')}] needs ${count}`,
      )
    }
    const encoded = encodeValues(datatype, values)
    if (typeof encoded === 'string') throw dataInvalid(name, encoded)
    return { name, datatype, shape: shape as number[], data: encoded }
  })
  if (offset !== binary.length) {
    throw invalid(`${binary.length - offset} bytes of binary data belong to no input`)
  }
  return { id: typeof header.id === 'string' ? header.id : undefined, inputs, ...outputsOf(header) }
}

function outputsOf(
  header: Record<string, unknown>,
): Pick<InferRequest, 'outputs' | 'binaryOutputs'> {
  const all = isRecord(header.parameters) && header.parameters.binary_data_output === true
  if (header.outputs === undefined) return { outputs: null, binaryOutputs: all ? true : new Set() }
  if (!Array.isArray(header.outputs)) throw invalid('"outputs" must be an array')
  const names: string[] = []
  const binary = new Set<string>()
  for (const [index, raw] of header.outputs.entries()) {
    if (!isRecord(raw) || typeof raw.name !== 'string') {
      throw invalid(`outputs[${index}] must be an object with a "name"`)
    }
    names.push(raw.name)
    if (all || (isRecord(raw.parameters) && raw.parameters.binary_data === true)) {
      binary.add(raw.name)
    }
  }
  return { outputs: names, binaryOutputs: binary }
}

/** Encodes the answer: plain JSON, or a JSON header followed by the binary outputs. */
export function encodeInferResponse(
  meta: {
    readonly modelName: string
    readonly modelVersion: string
    readonly id: string | undefined
  },
  outputs: readonly WireTensor[],
  binaryOutputs: ReadonlySet<string> | true,
): EncodedResponse {
  const binary: Uint8Array[] = []
  const parts = outputs.map((t) => {
    const head = `{"name":${JSON.stringify(t.name)},"datatype":${JSON.stringify(t.datatype)},"shape":${JSON.stringify(t.shape)}`
    if (binaryOutputs === true || binaryOutputs.has(t.name)) {
      binary.push(t.data)
      return `${head},"parameters":{"binary_data_size":${t.data.byteLength}}}`
    }
    return `${head},"data":${dataAsJson(t)}}`
  })
  const id = meta.id === undefined ? '' : `"id":${JSON.stringify(meta.id)},`
  const json = Buffer.from(
    `{${id}"model_name":${JSON.stringify(meta.modelName)},"model_version":${JSON.stringify(meta.modelVersion)},"outputs":[${parts.join(',')}]}`,
    'utf8',
  )
  if (binary.length === 0) {
    return { body: json, contentType: 'application/json', headerLength: undefined }
  }
  return {
    body: Buffer.concat([json, ...binary]),
    contentType: 'application/octet-stream',
    headerLength: json.length,
  }
}

/** An input's `binary_data_size`; throws `input_data_invalid` unless it is a count of bytes. */
function byteSize(name: string, size: unknown): number {
  // Not printed unless a number: String() of a deeply nested array overflows the stack.
  if (!Number.isSafeInteger(size) || (size as number) < 0) {
    throw dataInvalid(name, 'has a binary_data_size that is not a non-negative integer')
  }
  return size as number
}

/** `size` bytes from `offset` of the binary part; `infer_request_invalid` when it is shorter. */
function binaryPart(binary: Buffer, offset: number, size: number): Buffer {
  if (offset + size > binary.length) {
    throw invalid('the binary tensor data is shorter than the inputs declare')
  }
  return binary.subarray(offset, offset + size)
}

/** A `BYTES` input's JSON `data`: `count` strings (flat or nested), as length-prefixed bytes. */
function jsonStrings(name: string, data: unknown, count: number): Uint8Array {
  if (!Array.isArray(data)) {
    throw dataInvalid(name, 'needs "data" (strings), or parameters.binary_data_size')
  }
  const values = flatten(data)
  if (values.length !== count) {
    throw dataInvalid(name, `has ${values.length} elements; its shape needs ${count}`)
  }
  const bad = values.findIndex((v) => typeof v !== 'string')
  if (bad >= 0) throw dataInvalid(name, `element ${bad} is not a string (BYTES data are strings)`)
  return encodeStrings(values as string[])
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function invalid(message: string): BerthError {
  return new BerthError('infer_request_invalid', message)
}

function dataInvalid(input: string, problem: string): BerthError {
  return new BerthError('input_data_invalid', `input "${input}" ${problem}`, {
    details: { input },
  })
}

/**
 * A tensor's elements as JSON text: numbers (64-bit integers past 2^53 as exact decimal
 * strings), or strings for `BYTES`. Throws `inference_failed` for `BYTES` that are not text.
 */
export function dataAsJson(t: WireTensor): string {
  if (isFixedDatatype(t.datatype)) return valuesAsJson(t.datatype, t.data)
  if (t.datatype === 'BYTES') {
    const strings = decodeStrings(t.data)
    if (strings !== undefined) return JSON.stringify(strings)
  }
  throw new BerthError(
    'inference_failed',
    `output "${t.name}" (${t.datatype}) can only be returned as binary data: ask for it with binary_data_output`,
  )
}
