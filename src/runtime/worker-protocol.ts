import { MAX_BATCH_SIZE } from '../domain/model.js'
import { REQUEST_ID_PATTERN } from '../domain/request-id.js'
import type { ArchiveSource, TaskSpec, WeightFiles } from '../domain/serving-plan.js'
import type { ErrorCode } from '../errors/error-codes.js'
import {
  elementCount,
  ITEM_BYTES,
  isDatatype,
  isFixedDatatype,
  type TensorSpec,
  type WireTensor,
} from '../tensors/tensor.js'

/**
 * The runner protocol: length-prefixed frames on a pipe between berth and a runner process.
 *
 *   u32 LE  frame length (everything after this field)
 *   u32 LE  header length
 *   header  UTF-8 JSON: the message, tensors described by {name, datatype, shape, byteLength}
 *   payload the tensors' raw little-endian bytes, back to back in header order
 *
 * Tensor data never goes through JSON. Every request carries an `id` the answer repeats; a
 * `started` handshake, carrying the protocol version, precedes everything; errors travel as data
 * ({code, message}), with a code from `RUNNER_ERROR_CODES` only. While a runner is idle berth
 * sends `ping` now and then, and the runner answers `pong` at once.
 *
 * One runner process may hold several models, each in a numbered `slot` that `load`, `infer`
 * and `unload` name: loading into a slot replaces what it held, unloading frees that model only.
 *
 * The channel is fd 3 of a runner process berth spawned, or a socket (TCP or Unix) a runner
 * listens on, in a container or on another machine: there berth's first frame is `hello` with the
 * token the runner was started with, and the runner sends `started` only after a right one.
 */

/**
 * The version of this protocol, sent in the `started` handshake. berth refuses a runner that
 * speaks another (or none): raise it whenever a message changes meaning, in every runner
 * (`worker-main.ts`, `python/torch_worker.py`).
 */
export const RUNNER_PROTOCOL_VERSION = 6

/** A W3C `traceparent`: version, trace id, parent span id, flags. */
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/

function isRequestIdList(value: unknown): boolean {
  return (
    Array.isArray(value) &&
    // A call runs at most a whole batch, each request at least one row.
    value.length <= MAX_BATCH_SIZE &&
    value.every((id) => typeof id === 'string' && REQUEST_ID_PATTERN.test(id))
  )
}

/** Longest runner token a `hello` may carry (berth's are 64 hex digits). */
export const MAX_TOKEN_LENGTH = 256

/**
 * The error codes a runner may send: what loading or running a model can go wrong with, and
 * `internal_error` for an exception it did not expect. A runner is untrusted, so any other code
 * (one that would mean an authentication failure, say, or `constructor`) makes its message
 * malformed: the runner is ended with `runner_protocol_error`.
 */
export const RUNNER_ERROR_CODES = [
  'model_load_failed',
  'model_not_servable',
  'model_not_convertible',
  'inference_failed',
  'inference_out_of_memory',
  'tensor_not_found',
  'weights_corrupt',
  'safetensors_invalid',
  'pytorch_invalid',
  'unsafe_pickle',
  'stored_archive_corrupt',
  'internal_error',
] as const satisfies readonly ErrorCode[]

export type RunnerErrorCode = (typeof RUNNER_ERROR_CODES)[number]

const RUNNER_ERROR_CODE_SET: Readonly<Record<string, true>> = Object.freeze(
  Object.fromEntries(RUNNER_ERROR_CODES.map((code) => [code, true] as const)),
)

/** Whether a runner may send `code`: own properties only, so `constructor` is not one. */
export function isRunnerErrorCode(code: string): code is RunnerErrorCode {
  return Object.hasOwn(RUNNER_ERROR_CODE_SET, code)
}

export interface WireError {
  readonly code: RunnerErrorCode
  readonly message: string
}

export type ToWorker =
  | {
      readonly type: 'load'
      readonly id: number
      /** Which of the runner's models this is (any non-negative integer berth picks). */
      readonly slot: number
      readonly modelPath: string
      readonly intraOpThreads: number
      /** For the weights runtime: which files under `modelPath` hold the tensors. */
      readonly weights?: WeightFiles
      /** A task pipeline to wrap the loaded model in. */
      readonly task?: TaskSpec
      /**
       * Where to fetch the model (a runner with no view of berth's files): the paths above are
       * under `root`, berth's folder of the model, and name the same files in the archive.
       */
      readonly archive?: ArchiveSource & { readonly root: string }
    }
  | {
      readonly type: 'infer'
      readonly id: number
      readonly slot: number
      readonly inputs: readonly WireTensor[]
      readonly outputs: readonly string[] | null
      /** The W3C trace context of berth's call, when tracing: the runner's span is its child. */
      readonly traceparent?: string
      /** With it, the `x-request-id`s of the requests the call runs (a batch's, in order). */
      readonly requestIds?: readonly string[]
    }
  /** Frees the model in `slot` (answered `unloaded` even when the slot held none). */
  | { readonly type: 'unload'; readonly id: number; readonly slot: number }
  /** Liveness, sent only while no request is outstanding: answer `pong` at once. */
  | { readonly type: 'ping'; readonly id: number }
  /** Over a socket, berth's first frame: the token the runner was started with. */
  | { readonly type: 'hello'; readonly id: number; readonly token: string }

export type FromWorker =
  | { readonly type: 'started'; readonly protocol: number; readonly pid: number }
  | {
      readonly type: 'loaded'
      readonly id: number
      readonly inputs: readonly TensorSpec[]
      readonly outputs: readonly TensorSpec[]
    }
  | { readonly type: 'result'; readonly id: number; readonly outputs: readonly WireTensor[] }
  | { readonly type: 'unloaded'; readonly id: number }
  | { readonly type: 'failed'; readonly id: number; readonly error: WireError }
  | { readonly type: 'pong'; readonly id: number }

interface TensorHeader {
  readonly name: string
  readonly datatype: string
  readonly shape: readonly number[]
  readonly byteLength: number
}

/**
 * Writes a message as one frame. The parts go out corked, as one write: a frame split over
 * several system calls costs the peer several wake-ups.
 */
export function writeFrame(
  channel: { cork(): void; uncork(): void; write(chunk: Uint8Array): boolean },
  message: ToWorker | FromWorker,
): void {
  channel.cork()
  for (const part of encodeFrame(message)) channel.write(part)
  channel.uncork()
}

/** Encodes a message as one frame. */
export function encodeFrame(message: ToWorker | FromWorker): Buffer[] {
  const tensors = tensorsOf(message)
  const header: Record<string, unknown> = { ...message }
  if (tensors !== undefined) {
    header[tensors.field] = tensors.list.map(
      (t): TensorHeader => ({
        name: t.name,
        datatype: t.datatype,
        shape: t.shape,
        byteLength: t.data.byteLength,
      }),
    )
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8')
  const payloadBytes = (tensors?.list ?? []).reduce((sum, t) => sum + t.data.byteLength, 0)
  const prefix = Buffer.alloc(8)
  prefix.writeUInt32LE(4 + json.length + payloadBytes, 0)
  prefix.writeUInt32LE(json.length, 4)
  return [
    prefix,
    json,
    ...(tensors?.list ?? []).map((t) =>
      Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    ),
  ]
}

function tensorsOf(
  message: ToWorker | FromWorker,
): { field: 'inputs' | 'outputs'; list: readonly WireTensor[] } | undefined {
  if (message.type === 'infer') return { field: 'inputs', list: message.inputs }
  if (message.type === 'result') return { field: 'outputs', list: message.outputs }
  return undefined
}

/**
 * Reassembles frames from a byte stream. `push` returns the complete messages so far; a frame
 * that is too large (known from its first 8 bytes, before it is buffered), or one that is not a
 * known message, throws a plain Error ("bad frame: …"): the peer is broken, and the parent
 * turns that into `runner_protocol_error`.
 */
export class FrameDecoder<M> {
  readonly #maxFrameBytes: number
  readonly #check: (value: unknown) => value is M
  #chunks: Buffer[] = []
  #buffered = 0

  constructor(check: (value: unknown) => value is M, maxFrameBytes: number) {
    this.#check = check
    this.#maxFrameBytes = maxFrameBytes
  }

  push(chunk: Buffer): M[] {
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
    const messages: M[] = []
    for (;;) {
      if (this.#buffered < 8) break
      const head = this.#peek(8)
      const frameLength = head.readUInt32LE(0)
      const headerLength = head.readUInt32LE(4)
      if (frameLength > this.#maxFrameBytes || headerLength + 4 > frameLength) {
        throw new Error(`bad frame: length ${frameLength}, header ${headerLength}`)
      }
      if (this.#buffered < 4 + frameLength) break
      const frame = this.#take(4 + frameLength)
      messages.push(
        this.#decode(frame.subarray(8, 8 + headerLength), frame.subarray(8 + headerLength)),
      )
    }
    return messages
  }

  #decode(headerBytes: Buffer, payload: Buffer): M {
    // Every refusal is a plain "bad frame" Error: a SyntaxError or TypeError escaping from here
    // would say the decoder broke, when it is the peer that did.
    let header: unknown
    try {
      header = JSON.parse(headerBytes.toString('utf8'))
    } catch (err) {
      throw new Error('bad frame: header is not JSON', { cause: err })
    }
    if (typeof header !== 'object' || header === null)
      throw new Error('bad frame: header is not an object')
    const record = header as Record<string, unknown>
    for (const field of ['inputs', 'outputs'] as const) {
      const list = record[field]
      if (!Array.isArray(list) || !(record.type === 'infer' || record.type === 'result')) continue
      if ((record.type === 'infer') !== (field === 'inputs')) continue
      let offset = 0
      record[field] = list.map((t: unknown) => {
        if (typeof t !== 'object' || t === null)
          throw new Error('bad frame: tensor is not an object')
        const desc = t as Partial<TensorHeader>
        const length = desc.byteLength
        if (
          !Number.isSafeInteger(length) ||
          (length as number) < 0 ||
          offset + (length as number) > payload.length
        ) {
          throw new Error('bad frame: tensor bytes out of bounds')
        }
        const data = payload.subarray(offset, offset + (length as number))
        offset += length as number
        return { name: desc.name, datatype: desc.datatype, shape: desc.shape, data }
      })
      if (offset !== payload.length) throw new Error('bad frame: payload size mismatch')
    }
    if (!this.#check(record))
      throw new Error(`bad frame: not a known message (${String(record.type)})`)
    return record as M
  }

  #peek(n: number): Buffer {
    const first = this.#chunks[0] as Buffer
    if (first.length >= n) return first.subarray(0, n)
    const joined = Buffer.concat(this.#chunks)
    this.#chunks = [joined]
    return joined.subarray(0, n)
  }

  #take(n: number): Buffer {
    const joined =
      this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks)
    const frame = joined.subarray(0, n)
    const rest = joined.subarray(n)
    this.#chunks = rest.length > 0 ? [rest] : []
    this.#buffered -= n
    return frame
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null
const isId = (v: unknown) => Number.isSafeInteger(v)
const isSlot = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0
/** `{name, datatype, shape}`: what a tensor and a tensor spec have in common. */
const isTensorHead = (t: unknown): t is Record<string, unknown> & { shape: unknown[] } =>
  isObject(t) &&
  typeof t.name === 'string' &&
  typeof t.datatype === 'string' &&
  Array.isArray(t.shape)
/**
 * A tensor: an OIP datatype, a shape of sizes, and for the fixed-size datatypes exactly the bytes
 * the shape needs (so no reader downstream meets a short or ragged buffer).
 */
const isTensor = (t: unknown): t is WireTensor => {
  if (!isTensorHead(t) || !isDatatype(t.datatype) || !(t.data instanceof Uint8Array)) return false
  if (!t.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) return false
  if (!isFixedDatatype(t.datatype)) return true
  return t.data.byteLength === elementCount(t.shape as number[]) * ITEM_BYTES[t.datatype]
}
const isTensorList = (v: unknown) => Array.isArray(v) && v.every(isTensor)
const isSpecList = (v: unknown) => Array.isArray(v) && v.every(isTensorHead)

const isWeightFiles = (v: unknown): v is WeightFiles =>
  isObject(v) &&
  (v.source === 'safetensors' || v.source === 'pytorch') &&
  Array.isArray(v.files) &&
  v.files.every((f) => typeof f === 'string')

const isTaskSpec = (v: unknown): v is TaskSpec =>
  isObject(v) &&
  (v.kind === 'embedding' || v.kind === 'classification') &&
  (v.pooling === 'mean' || v.pooling === 'cls' || v.pooling === 'max') &&
  typeof v.normalize === 'boolean' &&
  typeof v.dir === 'string'

const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0

const isArchiveOrder = (v: unknown): v is ArchiveSource & { root: string } =>
  isObject(v) &&
  typeof v.url === 'string' &&
  typeof v.sha256 === 'string' &&
  typeof v.root === 'string' &&
  isCount(v.maxArchiveBytes) &&
  isObject(v.limits) &&
  isCount(v.limits.maxEntries) &&
  isCount(v.limits.maxUnpackedBytes) &&
  isCount(v.limits.maxCompressionRatio) &&
  isCount(v.limits.ratioGraceBytes)

/** Messages from a runner are untrusted: check every field before use. */
export function isFromWorker(value: unknown): value is FromWorker {
  if (!isObject(value)) return false
  switch (value.type) {
    case 'started':
      // The version is checked by whoever started the runner, which can say what it expected.
      return isId(value.pid) && isId(value.protocol)
    case 'loaded':
      return isId(value.id) && isSpecList(value.inputs) && isSpecList(value.outputs)
    case 'result':
      return isId(value.id) && isTensorList(value.outputs)
    case 'unloaded':
    case 'pong':
      return isId(value.id)
    case 'failed':
      return (
        isId(value.id) &&
        isObject(value.error) &&
        typeof value.error.code === 'string' &&
        isRunnerErrorCode(value.error.code) &&
        typeof value.error.message === 'string'
      )
    default:
      return false
  }
}

export function isToWorker(value: unknown): value is ToWorker {
  if (!isObject(value) || !isId(value.id)) return false
  switch (value.type) {
    case 'load':
      return (
        isSlot(value.slot) &&
        typeof value.modelPath === 'string' &&
        Number.isSafeInteger(value.intraOpThreads) &&
        (value.weights === undefined || isWeightFiles(value.weights)) &&
        (value.task === undefined || isTaskSpec(value.task)) &&
        (value.archive === undefined || isArchiveOrder(value.archive))
      )
    case 'infer':
      return (
        isSlot(value.slot) &&
        isTensorList(value.inputs) &&
        (value.traceparent === undefined ||
          (typeof value.traceparent === 'string' && TRACEPARENT.test(value.traceparent))) &&
        (value.requestIds === undefined || isRequestIdList(value.requestIds)) &&
        (value.outputs === null ||
          (Array.isArray(value.outputs) && value.outputs.every((o) => typeof o === 'string')))
      )
    case 'unload':
      return isSlot(value.slot)
    case 'ping':
      return true
    case 'hello':
      return typeof value.token === 'string' && value.token.length <= MAX_TOKEN_LENGTH
    default:
      return false
  }
}
