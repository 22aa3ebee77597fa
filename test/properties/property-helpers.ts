import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import fc from 'fast-check'
import { BerthError } from '../../src/errors/berth-error.js'
import type { ErrorCode } from '../../src/errors/error-codes.js'
import { HTTP_BY_KIND } from '../../src/http/error-handler.js'

/**
 * The one seed every property runs with, so every run is the same and a failure reproduces.
 * fast-check prints it in the failure (with the `path` of the shrunk counterexample);
 * `BERTH_PROPERTY_SEED=<n>` runs the properties with another seed, to explore.
 */
export const PROPERTY_SEED = Number(process.env.BERTH_PROPERTY_SEED ?? 1_652_990_832)

/**
 * fast-check parameters: the fixed seed and `numRuns` runs; for async properties a per-run
 * timeout, so a run that hangs fails (with its counterexample) instead of stalling the suite.
 * The failed assertion goes into the report itself: the test runner shows no `cause`.
 */
export function runs<Ts>(numRuns: number, timeoutMs?: number): fc.Parameters<Ts> {
  return {
    seed: PROPERTY_SEED,
    numRuns,
    includeErrorInReport: true,
    ...(timeoutMs === undefined ? {} : { plugins: [fc.timeout(timeoutMs)] }),
  }
}

/**
 * Asserts that `err` is a deliberate client refusal: a BerthError whose kind answers 4xx, with
 * one of `codes`. Anything else (a TypeError, a RangeError, a plain Error, a 5xx code) is a
 * parser bug that would reach a client as 500.
 */
export function assertRefusal(
  err: unknown,
  codes: readonly ErrorCode[],
): asserts err is BerthError {
  if (!(err instanceof BerthError)) {
    assert.fail(`expected a BerthError, got ${inspect(err, { depth: 2 })}`)
  }
  const { status } = HTTP_BY_KIND[err.kind]
  assert.ok(status >= 400 && status < 500, `${err.code} (${err.kind}) answers ${status}, not 4xx`)
  assert.ok(codes.includes(err.code), `unexpected code ${err.code}: ${err.message}`)
}

/** Runs `parse`: its result, or `undefined` when it refused with one of `codes` (see above). */
export function parsedOrRefused<T>(parse: () => T, codes: readonly ErrorCode[]): T | undefined {
  try {
    return parse()
  } catch (err) {
    assertRefusal(err, codes)
    return undefined
  }
}

/** `parsedOrRefused` for a parser that answers with a promise. */
export async function parsedOrRefusedAsync<T>(
  parse: () => Promise<T>,
  codes: readonly ErrorCode[],
): Promise<T | undefined> {
  try {
    return await parse()
  } catch (err) {
    assertRefusal(err, codes)
    return undefined
  }
}

/**
 * Runs synchronous `work` and asserts it took at most `ms`. A synchronous parser cannot be
 * interrupted, so this catches work that grows out of proportion to the input (a quadratic or
 * exponential walk), which on a bigger input is a hang.
 */
export function withinMs<T>(ms: number, work: () => T): T {
  const start = performance.now()
  const result = work()
  const took = performance.now() - start
  assert.ok(took <= ms, `took ${took.toFixed(0)} ms, more than ${ms} ms`)
  return result
}

/**
 * Runs `work` and asserts that the memory it left allocated (ArrayBuffers and JS heap) grew by
 * less than `bytes`: a parser that believed a declared size would show it here.
 */
export async function allocatesUnder<T>(bytes: number, work: () => T | Promise<T>): Promise<T> {
  const before = process.memoryUsage()
  const result = await work()
  const after = process.memoryUsage()
  const grown = Math.max(after.arrayBuffers - before.arrayBuffers, after.heapUsed - before.heapUsed)
  assert.ok(grown < bytes, `allocated ${grown} bytes, the bound is ${bytes}`)
  return result
}

/** Little-endian bytes of an unsigned integer of `width` bytes. */
export function uintLE(value: bigint, width: 4 | 8): Uint8Array {
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, value), true)
  return out.subarray(0, width)
}

/** Byte runs that parsers tend to treat specially: extremes, signs, lengths, JSON punctuation. */
const INTERESTING: readonly Uint8Array[] = [
  Uint8Array.of(0),
  Uint8Array.of(0xff),
  Uint8Array.of(0x7f),
  Uint8Array.of(0x80),
  Uint8Array.of(0x0a),
  ...['[', ']', '{', '}', '"', ',', ':', '-', '0', '1e999'].map((s) => Buffer.from(s)),
  uintLE(0xffff_ffffn, 4),
  uintLE(0x7fff_ffffn, 4),
  uintLE(0x8000_0000n, 4),
  uintLE(2n ** 64n - 1n, 8),
  uintLE(2n ** 63n, 8),
  uintLE(2n ** 53n, 8),
]

type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'overwrite'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | {
      readonly kind: 'duplicate'
      readonly from: number
      readonly length: number
      readonly at: number
    }

const position = fc.nat()
const someBytes = fc.oneof(fc.constantFrom(...INTERESTING), fc.uint8Array({ maxLength: 16 }))
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip'), at: position, bit: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate'), at: position }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('insert'), at: position, bytes: someBytes }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('overwrite'), at: position, bytes: someBytes }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('delete'), at: position, length: fc.nat(64) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('duplicate'),
      from: position,
      length: fc.nat(256),
      at: position,
    }),
  },
)

/** `bytes` with one mutation applied; positions wrap around the length, so any sample fits. */
function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  const n = bytes.length
  const at = (p: number) => (n === 0 ? 0 : p % (n + 1))
  const join = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts))
  switch (m.kind) {
    case 'flip': {
      if (n === 0) return bytes
      const out = Uint8Array.from(bytes)
      const i = m.at % n
      out[i] = (out[i] as number) ^ (1 << m.bit)
      return out
    }
    case 'truncate':
      return bytes.subarray(0, at(m.at))
    case 'insert': {
      const i = at(m.at)
      return join(bytes.subarray(0, i), m.bytes, bytes.subarray(i))
    }
    case 'overwrite': {
      const out = Uint8Array.from(bytes)
      out.set(m.bytes.subarray(0, Math.max(0, n - at(m.at))), at(m.at))
      return out
    }
    case 'delete': {
      const i = at(m.at)
      return join(bytes.subarray(0, i), bytes.subarray(i + m.length))
    }
    case 'duplicate': {
      const from = at(m.from)
      const i = at(m.at)
      return join(bytes.subarray(0, i), bytes.subarray(from, from + m.length), bytes.subarray(i))
    }
  }
}

/** Valid samples, each damaged by one to four bit flips, truncations, insertions, deletions… */
export function mutated(samples: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(samples, fc.array(mutation, { minLength: 1, maxLength: 4 }))
    .map(([sample, mutations]) => mutations.reduce(mutate, sample))
}

/** The head of one valid sample spliced onto the tail of another. */
export function spliced(samples: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(samples, samples, position, position)
    .map(
      ([a, b, i, j]) =>
        new Uint8Array(
          Buffer.concat([a.subarray(0, i % (a.length + 1)), b.subarray(j % (b.length + 1))]),
        ),
    )
}

/**
 * Hostile bytes for a parser whose valid inputs are `samples`: random bytes, mutated samples,
 * spliced samples, and the valid samples themselves.
 */
export function hostileBytes(
  samples: fc.Arbitrary<Uint8Array>,
  maxRandomLength = 512,
): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: maxRandomLength }) },
    { weight: 1, arbitrary: samples },
    { weight: 6, arbitrary: mutated(samples) },
    { weight: 2, arbitrary: spliced(samples) },
  )
}

/**
 * A value nested `depth` levels deep, far deeper than any real request: recursive code (a
 * `flat`, a `JSON.stringify`, a `join`) overflows the stack on it, while `JSON.parse` builds it
 * fine. It stands for the nested value until `jsonText` writes it out, so a counterexample
 * prints as `deeplyNested(array, 120000)`, not as the value itself.
 */
export class DeepNesting {
  readonly kind: 'array' | 'object'
  readonly depth: number

  constructor(kind: 'array' | 'object', depth: number) {
    this.kind = kind
    this.depth = depth
  }

  toJSON(): string {
    return `\u0000deep:${this.kind}:${this.depth}\u0000`
  }

  [fc.toStringMethod](): string {
    return `deeplyNested(${this.kind}, ${this.depth})`
  }
}

/** JSON text of `value`, with every `DeepNesting` written out in full. */
export function jsonText(value: unknown): string {
  return JSON.stringify(value).replace(
    /"\\u0000deep:(array|object):(\d+)\\u0000"/g,
    (_, kind: string, depth: string) => {
      const n = Number(depth)
      return kind === 'array'
        ? `${'['.repeat(n)}1${']'.repeat(n)}`
        : `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`
    },
  )
}

/** `value` as a parser receives it after `JSON.parse`: every `DeepNesting` made real. */
export function parsedJson(value: unknown): unknown {
  return JSON.parse(jsonText(value))
}

/**
 * JSON values a hostile client may send where a parser expects something specific: any JSON
 * value, or one nested deeper than any real request.
 */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  // Rarely deep: parsing one costs tens of milliseconds, and a request has many fields.
  { weight: 19, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom('array' as const, 'object' as const),
        // Past the default stack (about 10k frames of a simple recursion), not far past.
        fc.integer({ min: 20_000, max: 40_000 }),
      )
      .map(([kind, depth]) => new DeepNesting(kind, depth)),
  },
)
