import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import type { ErrorCode } from '../../src/errors/error-codes.js'
import {
  readSafetensorsHeader,
  SAFETENSORS_DTYPE_BYTES,
  type SafetensorsHeader,
} from '../../src/formats/safetensors/safetensors-header.js'
import { safetensorsBytes, type TensorInput } from '../fixtures/safetensors.js'
import { tempDir } from '../helpers/temp-dir.js'
import {
  allocatesUnder,
  hostileBytes,
  hostileJson,
  jsonText,
  parsedOrRefusedAsync,
  runs,
  uintLE,
} from './property-helpers.js'

/**
 * A safetensors header comes from an uploaded file. Whatever the file, the reader returns a
 * header whose tensors tile the data section exactly, or refuses with `safetensors_invalid`
 * (400); it reads no more than the file holds, whatever length the header claims.
 */

const CODES: readonly ErrorCode[] = ['safetensors_invalid']

const tensorInput: fc.Arbitrary<TensorInput> = fc
  .tuple(
    fc.constantFrom(...Object.keys(SAFETENSORS_DTYPE_BYTES)),
    fc.array(fc.nat(4), { maxLength: 3 }),
  )
  .chain(([dtype, shape]) => {
    const bytes = shape.reduce((a, b) => a * b, 1) * (SAFETENSORS_DTYPE_BYTES[dtype] as number)
    return fc
      .uint8Array({ minLength: bytes, maxLength: bytes })
      .map((data) => ({ dtype, shape, data: Buffer.from(data) }))
  })

const validFile = fc
  .tuple(
    fc.dictionary(fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }), tensorInput, {
      maxKeys: 4,
    }),
    fc.option(
      fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }),
      {
        nil: undefined,
      },
    ),
  )
  .filter(([tensors]) => !('__metadata__' in tensors))
  .map(([tensors, metadata]) => ({
    tensors,
    bytes: new Uint8Array(safetensorsBytes(tensors, metadata === undefined ? {} : { metadata })),
  }))

/** A header the reader accepted is what the contract promises: spans that tile the data. */
function assertTiles(header: SafetensorsHeader, fileBytes: number): void {
  assert.equal(header.fileBytes, fileBytes)
  const spans = [...header.tensors].sort((a, b) => a.start - b.start)
  let cursor = (spans[0]?.start ?? fileBytes) as number
  assert.ok(cursor >= 8 && cursor <= fileBytes)
  for (const t of spans) {
    assert.equal(t.start, cursor)
    const elements = t.shape.reduce((a, b) => a * b, 1)
    assert.equal(t.end - t.start, elements * (SAFETENSORS_DTYPE_BYTES[t.dtype] as number))
    cursor = t.end
  }
  assert.equal(cursor, fileBytes)
}

describe('safetensors header properties', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let n = 0
  before(async () => {
    dir = await tempDir()
  })
  after(() => dir.remove())

  async function read(bytes: Uint8Array) {
    const path = join(dir.path, `t${n++}.safetensors`)
    await writeFile(path, bytes)
    return parsedOrRefusedAsync(() => readSafetensorsHeader(path, 'model.safetensors'), CODES)
  }

  it('reads every valid file exactly', async () => {
    await fc.assert(
      fc.asyncProperty(validFile, async ({ tensors, bytes }) => {
        const header = await read(bytes)
        assert.ok(header !== undefined)
        assertTiles(header, bytes.length)
        assert.deepEqual(
          header.tensors.map((t) => [t.name, t.dtype, t.shape]).sort(),
          Object.entries(tensors)
            .map(([name, t]) => [name, t.dtype, t.shape])
            .sort(),
        )
      }),
      runs(150, 5000),
    )
  })

  it('answers damaged files with a header that tiles the file, or a 400', async () => {
    await fc.assert(
      fc.asyncProperty(hostileBytes(validFile.map((f) => f.bytes)), async (bytes) => {
        const header = await read(bytes)
        if (header !== undefined) assertTiles(header, bytes.length)
      }),
      runs(300, 5000),
    )
  })

  it('answers headers with fields of any type or depth with a header or a 400', async () => {
    const entry = fc.record(
      {
        dtype: fc.oneof(
          fc.constantFrom(...Object.keys(SAFETENSORS_DTYPE_BYTES)),
          fc.constantFrom('constructor', '__proto__', 'toString'),
          hostileJson,
        ),
        shape: fc.oneof(
          fc.array(fc.nat(4), { maxLength: 3 }),
          fc.array(fc.constant(2 ** 53 - 1), { maxLength: 3 }),
          hostileJson,
        ),
        data_offsets: fc.oneof(
          fc.tuple(fc.nat(64), fc.nat(64)),
          fc.tuple(fc.nat(), fc.nat()),
          hostileJson,
        ),
      },
      { requiredKeys: [] },
    )
    const header = fc.oneof(
      fc.dictionary(
        fc.oneof(fc.string({ maxLength: 4 }), fc.constant('__metadata__')),
        fc.oneof(entry, hostileJson),
        {
          maxKeys: 4,
        },
      ),
      hostileJson,
    )
    await fc.assert(
      fc.asyncProperty(header, fc.uint8Array({ maxLength: 64 }), async (value, data) => {
        const json = Buffer.from(jsonText(value), 'utf8')
        const bytes = Buffer.concat([uintLE(BigInt(json.length), 8), json, data])
        const parsed = await read(bytes)
        if (parsed !== undefined) assertTiles(parsed, bytes.length)
      }),
      runs(300, 5000),
    )
  })

  it('never reads or allocates more than the file holds, whatever length the header claims', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          fc.bigInt({ min: 2n ** 20n, max: 100_000_000n }),
          fc.constantFrom(2n ** 64n - 1n, 2n ** 63n, 100_000_001n, 100_000_000n),
        ),
        fc.uint8Array({ maxLength: 256 }),
        async (claimed, rest) => {
          const bytes = Buffer.concat([uintLE(claimed, 8), rest])
          fc.pre(claimed > BigInt(rest.length))
          const header = await allocatesUnder(16 * 1024 * 1024, () => read(bytes))
          assert.equal(header, undefined)
        },
      ),
      runs(150, 5000),
    )
  })
})
