import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { ErrorCode } from '../../src/errors/error-codes.js'
import { decodeInferRequest, encodeInferResponse } from '../../src/inference/oip-codec.js'
import { decodeStrings, encodeStrings } from '../../src/tensors/tensor-data.js'
import { parsedOrRefused, runs, uintLE, withinMs } from './property-helpers.js'

/**
 * `BYTES` tensors in the Open Inference Protocol codec: strings as JSON `data`, or Triton's
 * framing in binary (each element a 4-byte little-endian length, then its bytes). Both forms
 * decode to the same bytes, answers decode back, and hostile framing is a 400 at once.
 */

const CODES: readonly ErrorCode[] = ['infer_request_invalid', 'input_data_invalid']

/** Strings of any code points, and a shape whose product is their count. */
const texts = fc
  .array(fc.string({ unit: 'grapheme', maxLength: 12 }), { maxLength: 6 })
  .chain((values) =>
    fc
      .constantFrom<number[]>([values.length], [1, values.length], [values.length, 1])
      .map((shape) => ({ values, shape })),
  )

function body(header: object, binary?: Uint8Array) {
  const json = Buffer.from(JSON.stringify(header), 'utf8')
  if (binary === undefined) return { body: json, headerLength: undefined }
  return { body: Buffer.concat([json, binary]), headerLength: json.length }
}

describe('BYTES tensor properties', () => {
  it('decodes JSON strings and Triton-framed binary to the same bytes, and answers them back', () => {
    fc.assert(
      fc.property(texts, ({ values, shape }) => {
        const framed = encodeStrings(values)
        const asJson = body({ inputs: [{ name: 't', datatype: 'BYTES', shape, data: values }] })
        const asBinary = body(
          {
            inputs: [
              {
                name: 't',
                datatype: 'BYTES',
                shape,
                parameters: { binary_data_size: framed.byteLength },
              },
            ],
          },
          framed,
        )
        for (const { body: raw, headerLength } of [asJson, asBinary]) {
          const [input] = decodeInferRequest(raw, headerLength).inputs
          assert.deepEqual(input?.shape, shape)
          assert.deepEqual(Buffer.from(input?.data ?? []), Buffer.from(framed))
        }
        const tensor = { name: 'out', datatype: 'BYTES' as const, shape, data: framed }
        const meta = { modelName: 'm', modelVersion: '1.0.0', id: undefined }
        const json = JSON.parse(encodeInferResponse(meta, [tensor], new Set()).body.toString())
        assert.deepEqual(json.outputs[0].data, values)
        const binary = encodeInferResponse(meta, [tensor], true)
        assert.deepEqual(decodeStrings(binary.body.subarray(binary.headerLength ?? 0)), values)
      }),
      runs(300),
    )
  })

  it('answers framing of any length or count with a decoded input or a 400, at once', () => {
    const frames = fc.array(
      fc.oneof(
        fc.uint8Array({ maxLength: 6 }),
        fc.constantFrom(0, 1, 5, 2 ** 31, 2 ** 32 - 1).map((n) => uintLE(BigInt(n), 4)),
      ),
      { maxLength: 6 },
    )
    fc.assert(
      fc.property(
        frames,
        fc.array(fc.constantFrom(0, 1, 2, 3, 2 ** 31, 2 ** 53 - 1), { maxLength: 3 }),
        (parts, shape) => {
          const binary = Buffer.concat(parts)
          const { body: raw, headerLength } = body(
            {
              inputs: [
                {
                  name: 't',
                  datatype: 'BYTES',
                  shape,
                  parameters: { binary_data_size: binary.length },
                },
              ],
            },
            binary,
          )
          const decoded = withinMs(1000, () =>
            parsedOrRefused(() => decodeInferRequest(raw, headerLength), CODES),
          )
          if (decoded === undefined) return
          // Accepted: exactly as many well-framed elements as the shape holds.
          const strings = decodeStrings(decoded.inputs[0]?.data ?? new Uint8Array())
          assert.equal(
            strings?.length,
            shape.reduce((a, b) => a * b, 1),
          )
        },
      ),
      runs(500),
    )
  })
})
