import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { ERROR_CODES, type ErrorCode } from '../../src/errors/error-codes.js'
import {
  encodeFrame,
  FrameDecoder,
  type FromWorker,
  isFromWorker,
  isToWorker,
  RUNNER_ERROR_CODES,
  type ToWorker,
} from '../../src/runtime/worker-protocol.js'
import {
  DATATYPES,
  ITEM_BYTES,
  isFixedDatatype,
  type WireTensor,
} from '../../src/tensors/tensor.js'
import { hostileBytes, runs, uintLE, withinMs } from './property-helpers.js'

/**
 * The runner protocol's decoder reads bytes from the other process, which is untrusted in both
 * directions. Its contract towards the parent: `push` returns only messages that pass the
 * check, or throws a plain `Error` of its own ("bad frame: …"), which `WorkerProcess` turns
 * into `runner_protocol_error` and a restart (the runner side exits). Never a TypeError or
 * SyntaxError from reading the frame carelessly, never a hang, never a buffer of a size the
 * peer merely declared.
 */

const MAX_FRAME_BYTES = 64 * 1024

const id = fc.nat({ max: Number.MAX_SAFE_INTEGER })
const text = fc.string({ unit: 'binary', maxLength: 12 })
/** A tensor as the protocol allows it: fixed-size datatypes carry exactly their shape's bytes. */
const tensor: fc.Arbitrary<WireTensor> = fc
  .record({
    name: text,
    datatype: fc.constantFrom(...DATATYPES),
    shape: fc.array(fc.nat({ max: 4 }), { maxLength: 3 }),
    bytes: fc.uint8Array({ maxLength: 64 }),
  })
  .map(({ name, datatype, shape, bytes }) => {
    if (!isFixedDatatype(datatype)) return { name, datatype, shape, data: bytes }
    const data = new Uint8Array(shape.reduce((a, b) => a * b, 1) * ITEM_BYTES[datatype])
    data.set(bytes.subarray(0, data.byteLength))
    return { name, datatype, shape, data }
  })
const spec = fc.record({
  name: text,
  datatype: fc.constantFrom(
    ...DATATYPES,
    'ANY' as const,
    'UNSUPPORTED' as const,
    'ORT_string' as const,
  ),
  shape: fc.array(fc.oneof(fc.nat(), text), { maxLength: 4 }),
})

const toWorker: fc.Arbitrary<ToWorker> = fc.oneof(
  fc.record(
    {
      type: fc.constant('load' as const),
      id,
      slot: fc.nat(),
      modelPath: text,
      intraOpThreads: fc.integer({ min: -4, max: 64 }),
      weights: fc.record({
        source: fc.constantFrom('safetensors' as const, 'pytorch' as const),
        files: fc.array(text, { maxLength: 3 }),
      }),
      task: fc.record({
        kind: fc.constantFrom('embedding' as const, 'classification' as const),
        pooling: fc.constantFrom('mean' as const, 'cls' as const, 'max' as const),
        normalize: fc.boolean(),
        dir: text,
      }),
    },
    { requiredKeys: ['type', 'id', 'slot', 'modelPath', 'intraOpThreads'] },
  ),
  fc.record({
    type: fc.constant('infer' as const),
    id,
    slot: fc.nat(),
    inputs: fc.array(tensor, { maxLength: 4 }),
    outputs: fc.option(fc.array(text, { maxLength: 3 }), { nil: null }),
  }),
  fc.record({ type: fc.constant('unload' as const), id, slot: fc.nat() }),
  fc.record({ type: fc.constant('ping' as const), id }),
)

const fromWorker: fc.Arbitrary<FromWorker> = fc.oneof(
  fc.record({ type: fc.constant('started' as const), protocol: id, pid: id }),
  fc.record({
    type: fc.constant('loaded' as const),
    id,
    inputs: fc.array(spec, { maxLength: 3 }),
    outputs: fc.array(spec, { maxLength: 3 }),
  }),
  fc.record({
    type: fc.constant('result' as const),
    id,
    outputs: fc.array(tensor, { maxLength: 4 }),
  }),
  fc.record({ type: fc.constant('unloaded' as const), id }),
  fc.record({
    type: fc.constant('failed' as const),
    id,
    error: fc.record({ code: fc.constantFrom(...RUNNER_ERROR_CODES), message: text }),
  }),
  fc.record({ type: fc.constant('pong' as const), id }),
)

const frameBytes = (messages: readonly (ToWorker | FromWorker)[]) =>
  new Uint8Array(Buffer.concat(messages.flatMap((m) => encodeFrame(m))))

/** `bytes` cut at `cuts` (positions wrap around), as the pipe may deliver them. */
function chunked(bytes: Uint8Array, cuts: readonly number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let from = 0
  for (const to of [...at, bytes.length]) {
    chunks.push(Buffer.from(bytes.subarray(from, to)))
    from = to
  }
  return chunks
}

/** A message as plain JSON, tensor bytes as arrays of numbers (Buffer or not): comparable. */
function comparable(message: unknown): unknown {
  return JSON.parse(
    JSON.stringify(message, function (this: Record<string, unknown>, key, value: unknown) {
      const raw = this[key]
      return raw instanceof Uint8Array ? Array.from(raw) : value
    }),
  )
}

/** Pushes every chunk; the messages, or the error the decoder threw. */
function decodeAll<M>(decoder: FrameDecoder<M>, chunks: readonly Buffer[]) {
  const messages: M[] = []
  try {
    for (const chunk of chunks) messages.push(...decoder.push(chunk))
  } catch (err) {
    return { messages, err }
  }
  return { messages, err: undefined }
}

/** The decoder's own refusal: a plain Error, not one thrown by accident while reading. */
function assertDeliberate(err: unknown): void {
  assert.ok(err instanceof Error, `threw a non-Error: ${String(err)}`)
  assert.equal(
    Object.getPrototypeOf(err),
    Error.prototype,
    `threw a ${err.constructor.name} (${err.message}), not the decoder's own Error`,
  )
}

describe('FrameDecoder properties', () => {
  it('round-trips any stream of valid frames, however it is chunked', () => {
    for (const [check, messages] of [
      [isToWorker, fc.array(toWorker, { minLength: 1, maxLength: 6 })],
      [isFromWorker, fc.array(fromWorker, { minLength: 1, maxLength: 6 })],
    ] as const) {
      fc.assert(
        fc.property(
          messages as fc.Arbitrary<readonly (ToWorker | FromWorker)[]>,
          fc.array(fc.nat(), { maxLength: 20 }),
          (sent, cuts) => {
            const decoder = new FrameDecoder(check as (v: unknown) => v is unknown, MAX_FRAME_BYTES)
            const { messages: received, err } = decodeAll(decoder, chunked(frameBytes(sent), cuts))
            assert.equal(err, undefined)
            assert.deepEqual(received.map(comparable), sent.map(comparable))
          },
        ),
        runs(300),
      )
    }
  })

  it('on damaged or random streams, yields only checked messages or throws its own Error', () => {
    const samples = fc
      .tuple(fc.array(fc.oneof(toWorker, fromWorker), { minLength: 1, maxLength: 3 }))
      .map(([messages]) => frameBytes(messages))
    fc.assert(
      fc.property(hostileBytes(samples), fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
        for (const check of [isToWorker, isFromWorker] as const) {
          const decoder = new FrameDecoder<unknown>(check, MAX_FRAME_BYTES)
          const { messages, err } = withinMs(1000, () => decodeAll(decoder, chunked(bytes, cuts)))
          for (const message of messages) assert.ok(check(message))
          if (err !== undefined) assertDeliberate(err)
        }
      }),
      // Found by this property: a header that is not JSON, and a null tensor descriptor.
      {
        ...runs(400),
        examples: [
          [rawFrame('{"type":'), []],
          [rawFrame(NULL_TENSOR), [9]],
        ],
      },
    )
  })

  it('refuses a frame longer than the bound from its first 8 bytes, before buffering it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: MAX_FRAME_BYTES + 1, max: 2 ** 32 - 1 }),
        fc.nat({ max: 2 ** 32 - 1 }),
        (frameLength, headerLength) => {
          const decoder = new FrameDecoder(isFromWorker, MAX_FRAME_BYTES)
          const head = Buffer.concat([
            uintLE(BigInt(frameLength), 4),
            uintLE(BigInt(headerLength), 4),
          ])
          assert.throws(() => decoder.push(head), assertDeliberateTrue)
        },
      ),
      runs(200),
    )
  })

  it('refuses a header that claims more than its frame', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: MAX_FRAME_BYTES }),
        fc.nat({ max: 2 ** 32 - 1 }),
        (frame, header) => {
          fc.pre(header + 4 > frame)
          const decoder = new FrameDecoder(isFromWorker, MAX_FRAME_BYTES)
          const head = Buffer.concat([uintLE(BigInt(frame), 4), uintLE(BigInt(header), 4)])
          assert.throws(() => decoder.push(head), assertDeliberateTrue)
        },
      ),
      runs(200),
    )
  })
})

describe('runner message guards', () => {
  it('never throw, whatever they are given', () => {
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withTypedArray: true }), (value) => {
        assert.equal(typeof isFromWorker(value), 'boolean')
        assert.equal(typeof isToWorker(value), 'boolean')
        // Nothing but an object tagged with a known type gets through.
        const type = (value as { type?: unknown } | null)?.type
        if (
          !['started', 'loaded', 'result', 'unloaded', 'failed', 'pong'].includes(type as string)
        ) {
          assert.equal(isFromWorker(value), false)
        }
        if (!['load', 'infer', 'unload', 'ping'].includes(type as string)) {
          assert.equal(isToWorker(value), false)
        }
      }),
      runs(500),
    )
  })

  /** A value of a type none of the protocol's fields has where this field is required. */
  const wrong = fc.oneof(
    fc.constant(undefined),
    fc.constant(null),
    fc.constant({}),
    fc.constant(-1),
    fc.constant(1.5),
    fc.constant(Number.MAX_SAFE_INTEGER + 2),
    fc.constant('x'),
  )

  it('refuse a valid message with one required field broken', () => {
    const breaking = <M extends ToWorker | FromWorker>(messages: fc.Arbitrary<M>) =>
      fc.tuple(messages, fc.nat(), wrong).map(([message, pick, value]) => {
        const fields = requiredFields(message)
        const field = fields[pick % fields.length] as string
        return { message, field, broken: { ...message, [field]: value } as unknown }
      })
    fc.assert(
      fc.property(breaking(fromWorker), ({ message, field, broken }) => {
        assert.ok(isFromWorker(message))
        fc.pre(acceptsNot(message.type, field, (broken as Record<string, unknown>)[field]))
        assert.equal(isFromWorker(broken), false)
      }),
      runs(300),
    )
    fc.assert(
      fc.property(breaking(toWorker), ({ message, field, broken }) => {
        assert.ok(isToWorker(message))
        fc.pre(acceptsNot(message.type, field, (broken as Record<string, unknown>)[field]))
        assert.equal(isToWorker(broken), false)
      }),
      runs(300),
    )
  })

  it('refuse a result tensor whose bytes do not fit its shape, or that is not of an OIP datatype', () => {
    fc.assert(
      fc.property(
        id,
        tensor,
        fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0),
        fc.constantFrom('FP8', 'constructor', 'fp32', ''),
        (resultId, t, delta, datatype) => {
          const result = (outputs: unknown[]) => ({ type: 'result', id: resultId, outputs })
          assert.ok(isFromWorker(result([t])))
          assert.equal(isFromWorker(result([{ ...t, datatype }])), false)
          if (!isFixedDatatype(t.datatype)) return
          const length = Math.max(0, t.data.byteLength + delta)
          fc.pre(length !== t.data.byteLength)
          assert.equal(isFromWorker(result([{ ...t, data: new Uint8Array(length) }])), false)
        },
      ),
      runs(300),
    )
  })

  it('refuse a failure whose code a runner may not send', () => {
    const forbidden = (Object.keys(ERROR_CODES) as ErrorCode[]).filter(
      (code) => !(RUNNER_ERROR_CODES as readonly string[]).includes(code),
    )
    fc.assert(
      fc.property(
        id,
        fc.oneof(
          fc.constantFrom(...forbidden),
          fc.constantFrom('constructor', '__proto__', 'toString', 'hasOwnProperty', ''),
          fc.string(),
        ),
        text,
        (failedId, code, message) => {
          fc.pre(!(RUNNER_ERROR_CODES as readonly string[]).includes(code))
          assert.equal(
            isFromWorker({ type: 'failed', id: failedId, error: { code, message } }),
            false,
          )
        },
      ),
      runs(300),
    )
  })

  it('refuse tensors whose shape or bytes are not what they say', () => {
    const badShape = fc.array(
      fc.oneof(fc.constant(-1), fc.constant(0.5), fc.constant(2 ** 53), fc.constant('1')),
      { minLength: 1, maxLength: 2 },
    )
    fc.assert(
      fc.property(
        fc.record({
          type: fc.constant('result' as const),
          id,
          outputs: fc.array(tensor, { minLength: 1, maxLength: 3 }),
        }),
        fc.nat(),
        fc.oneof(
          badShape.map((shape) => ({ shape })),
          fc.constantFrom({ data: [1, 2] }, { data: 'AAEC' }, { data: null }, { shape: null }),
        ),
        (message, pick, damage) => {
          const outputs = [...message.outputs]
          const i = pick % outputs.length
          outputs[i] = { ...(outputs[i] as WireTensor), ...(damage as object) } as WireTensor
          assert.equal(isFromWorker({ ...message, outputs }), false)
          assert.equal(
            isToWorker({ type: 'infer', id: message.id, slot: 0, inputs: outputs, outputs: null }),
            false,
          )
        },
      ),
      runs(200),
    )
  })
})

const NULL_TENSOR = '{"type":"result","id":1,"outputs":[null]}'

/** One frame around `header`, whatever it holds, with no payload. */
function rawFrame(header: string): Uint8Array {
  const json = Buffer.from(header, 'utf8')
  return new Uint8Array(
    Buffer.concat([uintLE(BigInt(4 + json.length), 4), uintLE(BigInt(json.length), 4), json]),
  )
}

function assertDeliberateTrue(err: unknown): true {
  assertDeliberate(err)
  return true
}

/** The fields a message of this type cannot do without. */
function requiredFields(message: ToWorker | FromWorker): string[] {
  switch (message.type) {
    case 'started':
      return ['type', 'protocol', 'pid']
    case 'load':
      return ['type', 'id', 'slot', 'modelPath', 'intraOpThreads']
    case 'infer':
      return ['type', 'id', 'slot', 'inputs', 'outputs']
    case 'unload':
      return ['type', 'id', 'slot']
    case 'loaded':
      return ['type', 'id', 'inputs', 'outputs']
    case 'result':
      return ['type', 'id', 'outputs']
    case 'failed':
      return ['type', 'id', 'error']
    default:
      return ['type', 'id']
  }
}

/**
 * Whether `value` really breaks `field` of a `type` message: a negative id is still a safe
 * integer, any string a model path, and `null` a fine `outputs` of an infer.
 */
function acceptsNot(type: string, field: string, value: unknown): boolean {
  if (['id', 'pid', 'protocol', 'intraOpThreads'].includes(field) && value === -1) return false
  if (field === 'modelPath' && typeof value === 'string') return false
  if (type === 'infer' && field === 'outputs' && value === null) return false
  return true
}
