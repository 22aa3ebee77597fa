import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { type FixedDatatype, ITEM_BYTES } from '../../src/tensors/tensor.js'
import {
  decodeStrings,
  encodeStrings,
  encodeValues,
  fromHalf,
  toHalf,
  valuesAsJson,
} from '../../src/tensors/tensor-data.js'
import {
  DeepNesting,
  hostileBytes,
  hostileJson,
  parsedJson,
  runs,
  uintLE,
  withinMs,
} from './property-helpers.js'

/**
 * Tensor data crosses both trust boundaries: clients send JSON values (`encodeValues`), runners
 * send bytes (`valuesAsJson`, `decodeStrings`). Neither side may make these throw: a client's
 * bad value is a message naming it, a runner's bytes are always printable.
 */

const DATATYPES = Object.keys(ITEM_BYTES) as FixedDatatype[]

/** Valid JSON values of each datatype, and the JSON text berth answers for each. */
const valuesOf: Readonly<Record<string, fc.Arbitrary<readonly [unknown, string]>>> = {
  BOOL: fc
    .constantFrom(true, false, 0, 1)
    .map((v) => [v, v === true || v === 1 ? 'true' : 'false'] as const),
  ...Object.fromEntries(
    (
      [
        ['UINT8', 0, 2 ** 8 - 1],
        ['UINT16', 0, 2 ** 16 - 1],
        ['UINT32', 0, 2 ** 32 - 1],
        ['INT8', -(2 ** 7), 2 ** 7 - 1],
        ['INT16', -(2 ** 15), 2 ** 15 - 1],
        ['INT32', -(2 ** 31), 2 ** 31 - 1],
      ] as const
    ).map(([datatype, min, max]) => [
      datatype,
      fc.integer({ min, max }).map((v) => [v, String(v)] as const),
    ]),
  ),
  ...Object.fromEntries(
    (
      [
        ['INT64', -(2n ** 63n), 2n ** 63n - 1n],
        ['UINT64', 0n, 2n ** 64n - 1n],
      ] as const
    ).map(([datatype, min, max]) => [
      datatype,
      fc.bigInt({ min, max }).chain((v) =>
        // Integers past 2^53 travel as decimal strings; smaller ones as either.
        Number.isSafeInteger(Number(v))
          ? fc.constantFrom([Number(v), String(v)] as const, [String(v), String(v)] as const)
          : fc.constant([String(v), String(v)] as const),
      ),
    ]),
  ),
  FP64: fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => [v, json(v)] as const),
  FP32: fc
    .double({ noNaN: true, noDefaultInfinity: true })
    .map((v) => [v, json(Math.fround(v))] as const),
  FP16: fc
    .double({ noNaN: true, noDefaultInfinity: true })
    .map((v) => [v, json(fromHalf(toHalf(v)))] as const),
}

/** JSON text of a number as berth writes it: no NaN or infinities in JSON. */
function json(x: number): string {
  return Number.isFinite(x) ? String(x) : 'null'
}

/** Every finite, non-negative binary16 value, in order of its bits (which is its order). */
const HALVES = Float64Array.from({ length: 0x7c00 }, (_, h) => fromHalf(h))

/** The binary16 bits nearest to `x`, ties to the even one: the oracle for `toHalf`. */
function nearestHalf(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0
  const a = Math.abs(x)
  // 65520 is halfway from the largest half (65504) to 2^16: it and above round to infinity.
  if (a >= 65520) return sign | 0x7c00
  let lo = 0
  let hi = HALVES.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if ((HALVES[mid] as number) <= a) lo = mid
    else hi = mid - 1
  }
  if (lo === HALVES.length - 1) return sign | (a - 65504 < 65536 - a ? lo : 0x7c00)
  const below = a - (HALVES[lo] as number)
  const above = (HALVES[lo + 1] as number) - a
  if (below < above) return sign | lo
  if (above < below) return sign | (lo + 1)
  return sign | (lo % 2 === 0 ? lo : lo + 1)
}

/** The double next to `x` towards `direction` (±1). */
function nextDouble(x: number, direction: 1 | -1): number {
  if (x === 0) return direction * Number.MIN_VALUE
  const view = new DataView(new ArrayBuffer(8))
  view.setFloat64(0, x)
  const bits = view.getBigUint64(0)
  view.setBigUint64(0, x > 0 === direction > 0 ? bits + 1n : bits - 1n)
  return view.getFloat64(0)
}

/**
 * Doubles at and a few steps around the midpoint of two neighbouring halves (and the overflow
 * threshold): where rounding to nearest, ties to even, is decided.
 */
const nearMidpoints = fc
  .tuple(fc.nat({ max: 0x7bff }), fc.integer({ min: -3, max: 3 }), fc.boolean())
  .map(([h, steps, negative]) => {
    let x = ((HALVES[h] as number) + (HALVES[h + 1] ?? 65536)) / 2
    for (let i = 0; i < Math.abs(steps); i++) x = nextDouble(x, steps > 0 ? 1 : -1)
    return negative ? -x : x
  })

describe('tensor data properties', () => {
  it('encodes valid values of every datatype and prints them back exactly', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...DATATYPES).chain((datatype) =>
          fc.tuple(
            fc.constant(datatype),
            fc.array(valuesOf[datatype] as fc.Arbitrary<readonly [unknown, string]>, {
              maxLength: 16,
            }),
          ),
        ),
        ([datatype, pairs]) => {
          const bytes = encodeValues(
            datatype,
            pairs.map(([v]) => v),
          )
          assert.ok(bytes instanceof Uint8Array, String(bytes))
          assert.equal(bytes.byteLength, pairs.length * ITEM_BYTES[datatype])
          assert.equal(
            valuesAsJson(datatype, bytes),
            `[${pairs.map(([, text]) => text).join(',')}]`,
          )
        },
      ),
      runs(400),
    )
  })

  it('answers any hostile value with a message, never a throw', () => {
    const datatype = fc.oneof(
      fc.constantFrom(...DATATYPES),
      fc.constantFrom('BYTES', 'constructor', '__proto__', 'toString', 'hasOwnProperty', ''),
      fc.string(),
    )
    fc.assert(
      fc.property(datatype, fc.array(hostileJson, { maxLength: 4 }), (type, values) => {
        const real = values.map(parsedJson)
        const result = withinMs(1000, () => encodeValues(type, real))
        if (typeof result === 'string') return
        assert.ok(result instanceof Uint8Array)
        assert.equal(result.byteLength, real.length * ITEM_BYTES[type as FixedDatatype])
      }),
      // Found by this property: a nested array or object as an element (the message printed it
      // with JSON.stringify, which overflows the stack). Datatypes named after Object's
      // prototype members once found an "item size" too.
      {
        ...runs(300),
        examples: [
          ['FP32', [new DeepNesting('object', 40_000)]],
          ['constructor', [1]],
          ['toString', []],
        ],
      },
    )
  })

  it('prints any bytes a runner sends, of any fixed-size datatype, as a JSON array', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...DATATYPES),
        fc.uint8Array({ maxLength: 64 }),
        fc.nat(7),
        (datatype, bytes, offset) => {
          // Runner tensors are views into a frame, at any offset, of any length.
          const data = new Uint8Array(Buffer.concat([Buffer.alloc(offset), bytes])).subarray(offset)
          const parsed: unknown = JSON.parse(valuesAsJson(datatype, data))
          assert.ok(Array.isArray(parsed))
          assert.equal(parsed.length, Math.floor(bytes.length / ITEM_BYTES[datatype]))
        },
      ),
      runs(400),
    )
  })

  it('turns every binary16 value into a number and back to the same bits', () => {
    // Exhaustive: 65536 values are fewer than a property would need to be sure.
    for (let h = 0; h <= 0xffff; h++) {
      const x = fromHalf(h)
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) {
        assert.ok(Number.isNaN(x), `0x${h.toString(16)}`)
        const back = toHalf(x)
        assert.ok((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0, `NaN 0x${h.toString(16)}`)
      } else assert.equal(toHalf(x), h, `0x${h.toString(16)} (${x})`)
    }
    for (let h = 1; h < HALVES.length; h++) {
      assert.ok((HALVES[h] as number) > (HALVES[h - 1] as number), 'halves are ordered by bits')
    }
    assert.deepEqual(
      [fromHalf(1), fromHalf(0x3c00), fromHalf(0x7bff), fromHalf(0x7c00), fromHalf(0xfc00)],
      [2 ** -24, 1, 65504, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY],
    )
  })

  it('rounds any double to the nearest binary16, ties to even', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.double({ noNaN: true }),
          nearMidpoints,
          fc.double({ min: -70_000, max: 70_000, noNaN: true }),
        ),
        (x) => {
          assert.equal(toHalf(x), nearestHalf(x), `toHalf(${x})`)
        },
      ),
      // Found by this property: a double just off a midpoint first rounds to float32, landing
      // on the midpoint itself, and the tie then went to the even half, the wrong way.
      { ...runs(2000), examples: [[nextDouble((1 + (1 + 2 ** -10)) / 2, 1)], [65519.99]] },
    )
  })
})

/** The spans of a BYTES tensor's strings, if its length prefixes tile the bytes exactly. */
function framing(bytes: Uint8Array): Array<readonly [number, number]> | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const spans: Array<readonly [number, number]> = []
  for (let at = 0; at < bytes.length; ) {
    if (at + 4 > bytes.length) return undefined
    const end = at + 4 + view.getUint32(at, true)
    if (end > bytes.length) return undefined
    spans.push([at + 4, end])
    at = end
  }
  return spans
}

describe('BYTES (string tensor) properties', () => {
  it('round-trips any list of strings', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'grapheme', maxLength: 20 }), { maxLength: 12 }),
        (texts) => {
          assert.deepEqual(decodeStrings(encodeStrings(texts)), texts)
        },
      ),
      runs(300),
    )
  })

  it('never throws on damaged bytes, and refuses lengths that run past the end', () => {
    const samples = fc
      .array(fc.string({ unit: 'binary', maxLength: 12 }), { minLength: 1, maxLength: 6 })
      .map((texts) => encodeStrings(texts))
    fc.assert(
      fc.property(hostileBytes(samples), (bytes) => {
        const spans = framing(bytes)
        const texts = decodeStrings(bytes)
        assert.equal(texts?.length, spans?.length)
        for (const [i, [from, to]] of (spans ?? []).entries()) {
          assert.equal(texts?.[i], Buffer.from(bytes).toString('utf8', from, to))
        }
      }),
      runs(400),
    )
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 32 - 1 }),
        fc.uint8Array({ maxLength: 32 }),
        (length, rest) => {
          fc.pre(length > rest.length)
          assert.equal(decodeStrings(Buffer.concat([uintLE(BigInt(length), 4), rest])), undefined)
        },
      ),
      runs(200),
    )
  })
})
