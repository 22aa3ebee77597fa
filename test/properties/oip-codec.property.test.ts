import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { ErrorCode } from '../../src/errors/error-codes.js'
import {
  decodeInferHeader,
  decodeInferRequest,
  encodeInferResponse,
} from '../../src/inference/oip-codec.js'
import { type FixedDatatype, ITEM_BYTES, type WireTensor } from '../../src/tensors/tensor.js'
import { encodeValues, valuesAsJson } from '../../src/tensors/tensor-data.js'
import {
  allocatesUnder,
  DeepNesting,
  hostileJson,
  jsonText,
  mutated,
  parsedOrRefused,
  runs,
  spliced,
  withinMs,
} from './property-helpers.js'

/**
 * The Open Inference Protocol codec reads request bodies straight from clients. Whatever the
 * body, it answers with a decoded request or a 400 (`infer_request_invalid`,
 * `input_data_invalid`); sizes a body declares are checked against the bytes it has.
 */

const CODES: readonly ErrorCode[] = ['infer_request_invalid', 'input_data_invalid']

/** One valid input: its JSON description, and the bytes berth must decode it to. */
interface ValidInput {
  readonly name: string
  readonly datatype: FixedDatatype
  readonly shape: readonly number[]
  readonly values: readonly unknown[]
  readonly bytes: Uint8Array
  /** How it travels: flat JSON data, nested row-major JSON data, or binary after the header. */
  readonly form: 'flat' | 'nested' | 'binary'
}

/** Finite doubles; no -0, which JSON writes as 0. */
const float = fc
  .double({ noNaN: true, noDefaultInfinity: true })
  .map((v) => (Object.is(v, -0) ? 0 : v))

const DATATYPES = Object.keys(ITEM_BYTES) as FixedDatatype[]

const elementOf: Readonly<Record<FixedDatatype, fc.Arbitrary<unknown>>> = {
  BOOL: fc.boolean(),
  UINT8: fc.integer({ min: 0, max: 255 }),
  UINT16: fc.integer({ min: 0, max: 65535 }),
  UINT32: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  UINT64: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String),
  INT8: fc.integer({ min: -128, max: 127 }),
  INT16: fc.integer({ min: -32768, max: 32767 }),
  INT32: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  INT64: fc.oneof(
    fc.maxSafeInteger(),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
  ),
  FP16: float,
  FP32: float,
  FP64: float,
}

/** `values` nested row-major along `shape`, as clients may send them. */
function nest(values: readonly unknown[], shape: readonly number[]): unknown {
  if (shape.length <= 1) return [...values]
  const [rows = 0, ...rest] = shape
  const size = rest.reduce((a, b) => a * b, 1)
  return Array.from({ length: rows }, (_, r) => nest(values.slice(r * size, (r + 1) * size), rest))
}

const validInput = (name: string): fc.Arbitrary<ValidInput> =>
  fc
    .tuple(
      fc.constantFrom(...DATATYPES),
      fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }),
      fc.constantFrom('flat' as const, 'nested' as const, 'binary' as const),
    )
    .chain(([datatype, shape, form]) => {
      const count = shape.reduce((a, b) => a * b, 1)
      return fc
        .array(elementOf[datatype] as fc.Arbitrary<unknown>, { minLength: count, maxLength: count })
        .map((values): ValidInput => {
          const bytes = encodeValues(datatype, values)
          assert.ok(bytes instanceof Uint8Array, String(bytes))
          return { name, datatype, shape, values, bytes, form }
        })
    })

const validRequest = fc
  .uniqueArray(fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }), {
    minLength: 1,
    maxLength: 4,
  })
  .chain((names) => fc.tuple(...names.map(validInput)))
  .chain((inputs) =>
    fc.record({
      inputs: fc.constant(inputs),
      id: fc.option(fc.string(), { nil: undefined }),
      outputs: fc.option(fc.array(fc.record({ name: fc.string() }), { maxLength: 3 }), {
        nil: undefined,
      }),
    }),
  )

type ValidRequest = typeof validRequest extends fc.Arbitrary<infer R> ? R : never

/** The request body and its `Inference-Header-Content-Length`, when it has binary tensors. */
function bodyOf(request: ValidRequest): { body: Buffer; headerLength: number | undefined } {
  const header = {
    ...(request.id === undefined ? {} : { id: request.id }),
    inputs: request.inputs.map((t) => ({
      name: t.name,
      datatype: t.datatype,
      shape: t.shape,
      ...(t.form === 'binary'
        ? { parameters: { binary_data_size: t.bytes.byteLength } }
        : { data: t.form === 'nested' ? nest(t.values, t.shape) : t.values }),
    })),
    ...(request.outputs === undefined ? {} : { outputs: request.outputs }),
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8')
  const binary = request.inputs.filter((t) => t.form === 'binary').map((t) => t.bytes)
  if (binary.length === 0) return { body: json, headerLength: undefined }
  return { body: Buffer.concat([json, ...binary]), headerLength: json.length }
}

/** Hostile shapes: fine ones, and dims whose product is huge or not a safe integer. */
const hostileShape = fc.oneof(
  fc.array(fc.nat(4), { maxLength: 3 }),
  fc.array(fc.constantFrom(2 ** 20, 2 ** 31, 2 ** 53 - 1, 0), { minLength: 1, maxLength: 4 }),
  hostileJson,
)

/** Input descriptions whose every field may be of the wrong type, wrong size or hostile. */
const hostileInput = fc.record(
  {
    name: fc.oneof(fc.string({ maxLength: 4 }), hostileJson),
    datatype: fc.oneof(
      fc.constantFrom(...Object.keys(ITEM_BYTES)),
      fc.constantFrom('BYTES', 'constructor', '__proto__', 'toString', ''),
      hostileJson,
    ),
    shape: hostileShape,
    data: fc.oneof(
      fc.array(fc.oneof(fc.integer(), fc.double(), hostileJson), { maxLength: 6 }),
      hostileJson,
    ),
    parameters: fc.oneof(
      fc.record({ binary_data_size: fc.oneof(fc.nat(64), fc.constant(2 ** 53 - 1), hostileJson) }),
      hostileJson,
    ),
  },
  { requiredKeys: [] },
)

const hostileHeader = fc.record(
  {
    id: hostileJson,
    inputs: fc.oneof(fc.array(hostileInput, { maxLength: 4 }), hostileJson),
    outputs: fc.oneof(
      fc.array(fc.record({ name: fc.oneof(fc.string(), hostileJson), parameters: hostileJson }), {
        maxLength: 3,
      }),
      hostileJson,
    ),
    parameters: hostileJson,
  },
  { requiredKeys: [] },
)

describe('Open Inference Protocol codec properties', () => {
  it('decodes every valid request, JSON or binary, to exactly its tensors', () => {
    fc.assert(
      fc.property(validRequest, (request) => {
        const { body, headerLength } = bodyOf(request)
        const decoded = decodeInferRequest(body, headerLength)
        assert.equal(decoded.id, request.id)
        assert.deepEqual(decoded.outputs, request.outputs?.map((o) => o.name) ?? null)
        assert.deepEqual(
          decoded.inputs.map((t) => [t.name, t.datatype, t.shape, Buffer.from(t.data)]),
          request.inputs.map((t) => [t.name, t.datatype, t.shape, Buffer.from(t.bytes)]),
        )
      }),
      runs(300),
    )
  })

  it('answers with bodies that decode back to the same tensors', () => {
    fc.assert(
      fc.property(validRequest, fc.boolean(), (request, binary) => {
        // JSON.parse reads 64-bit integers past 2^53 as doubles: those only compare in binary.
        // Neither do values too large for their float type: JSON has no infinities, they go as null.
        fc.pre(
          binary ||
            request.inputs.every(
              (t) =>
                t.values.every((v) => typeof v !== 'string') &&
                !valuesAsJson(t.datatype, t.bytes).includes('null'),
            ),
        )
        const outputs: WireTensor[] = request.inputs.map((t) => ({ ...t, data: t.bytes }))
        const encoded = encodeInferResponse(
          { modelName: 'm', modelVersion: '1', id: request.id },
          outputs,
          binary ? true : new Set(),
        )
        const end = encoded.headerLength ?? encoded.body.length
        const header = JSON.parse(encoded.body.subarray(0, end).toString('utf8'))
        // The answer has the request's tensor format under "outputs".
        const back = decodeInferHeader({ inputs: header.outputs }, encoded.body.subarray(end))
        assert.deepEqual(
          back.inputs.map((t) => [t.name, t.datatype, t.shape, Buffer.from(t.data)]),
          outputs.map((t) => [
            t.name,
            t.datatype,
            t.shape,
            Buffer.from(binary ? t.data : zeroSign(t)),
          ]),
        )
      }),
      runs(300),
    )
  })

  it('answers whatever tensors a runner returns with a body or a 400, never a throw of its own', () => {
    // A runner is untrusted: its frames are checked for shape, not for what the datatype says.
    const output = fc.record({
      name: fc.string({ maxLength: 6 }),
      datatype: fc.oneof(
        fc.constantFrom(...DATATYPES, 'BYTES', 'BF16'),
        fc.constantFrom('ORT_float8e4m3fn', 'constructor', ''),
        fc.string({ maxLength: 6 }),
      ),
      shape: fc.array(fc.nat(4), { maxLength: 3 }),
      data: fc.uint8Array({ maxLength: 48 }),
    })
    fc.assert(
      fc.property(fc.array(output, { maxLength: 4 }), fc.boolean(), (outputs, binary) => {
        const encoded = parsedOrRefused(
          () =>
            encodeInferResponse(
              { modelName: 'm', modelVersion: '1', id: undefined },
              outputs as WireTensor[],
              binary ? true : new Set(),
            ),
          ['inference_failed'],
        )
        if (encoded === undefined) return
        const end = encoded.headerLength ?? encoded.body.length
        const header = JSON.parse(encoded.body.subarray(0, end).toString('utf8'))
        assert.equal(header.outputs.length, outputs.length)
      }),
      runs(300),
    )
  })

  it('answers damaged bodies with a decoded request or a 400', () => {
    const samples = validRequest.map((r) => {
      const { body, headerLength } = bodyOf(r)
      return { body: new Uint8Array(body), headerLength }
    })
    const bodies = samples.map((s) => s.body)
    fc.assert(
      fc.property(
        fc.oneof(mutated(bodies), spliced(bodies), fc.uint8Array({ maxLength: 256 })),
        fc.oneof(fc.constant(undefined), fc.integer({ min: -8, max: 600 })),
        (body, headerLength) => {
          withinMs(1000, () =>
            parsedOrRefused(() => decodeInferRequest(Buffer.from(body), headerLength), CODES),
          )
        },
      ),
      runs(500),
    )
  })

  it('answers requests with fields of any type or depth with a decoded request or a 400', () => {
    fc.assert(
      fc.property(
        fc.oneof(hostileHeader, hostileJson),
        fc.uint8Array({ maxLength: 64 }),
        fc.boolean(),
        (header, binary, withBinary) => {
          const json = Buffer.from(jsonText(header), 'utf8')
          const body = withBinary ? Buffer.concat([json, binary]) : json
          withinMs(1000, () =>
            parsedOrRefused(
              () => decodeInferRequest(body, withBinary ? json.length : undefined),
              CODES,
            ),
          )
        },
      ),
      // Found by this property: data nested deeper than the stack (flattened recursively), a
      // binary_data_size that is a deeply nested array (printed with String()).
      {
        ...runs(400),
        examples: [
          [
            {
              inputs: [
                {
                  name: 'x',
                  datatype: 'FP32',
                  shape: [1],
                  data: new DeepNesting('array', 40_000),
                },
              ],
            },
            new Uint8Array(),
            false,
          ],
          [
            {
              inputs: [
                {
                  name: 'x',
                  datatype: 'FP32',
                  shape: [1],
                  parameters: { binary_data_size: new DeepNesting('array', 40_000) },
                },
              ],
            },
            new Uint8Array(),
            false,
          ],
        ],
      },
    )
  })

  it('refuses sizes it was only told, without allocating them', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...DATATYPES),
        fc.array(fc.integer({ min: 2 ** 10, max: 2 ** 24 }), { minLength: 2, maxLength: 4 }),
        fc.boolean(),
        async (datatype, shape, binary) => {
          const count = shape.reduce((a, b) => a * b, 1)
          fc.pre(count * ITEM_BYTES[datatype] >= 2 ** 30)
          const input = binary
            ? { parameters: { binary_data_size: count * ITEM_BYTES[datatype] } }
            : { data: [1, 2, 3] }
          const json = Buffer.from(
            JSON.stringify({ inputs: [{ name: 'x', datatype, shape, ...input }] }),
          )
          const body = binary ? Buffer.concat([json, Buffer.alloc(16)]) : json
          await allocatesUnder(32 * 1024 * 1024, () => {
            const result = parsedOrRefused(
              () => decodeInferRequest(body, binary ? json.length : undefined),
              CODES,
            )
            assert.equal(result, undefined)
          })
        },
      ),
      runs(100),
    )
  })
})

/** A tensor's bytes as a JSON answer carries them: -0 is written "0" and comes back as +0. */
function zeroSign(t: WireTensor): Uint8Array {
  if (!t.datatype.startsWith('FP')) return t.data
  const item = ITEM_BYTES[t.datatype as FixedDatatype]
  const out = Uint8Array.from(t.data)
  const view = new DataView(out.buffer)
  for (let at = 0; at < out.length; at += item) {
    const value =
      item === 8
        ? view.getFloat64(at, true)
        : item === 4
          ? view.getFloat32(at, true)
          : view.getUint16(at, true)
    if (item === 2 ? value === 0x8000 : Object.is(value, -0)) {
      for (let k = 0; k < item; k++) out[at + k] = 0
    }
  }
  return out
}
