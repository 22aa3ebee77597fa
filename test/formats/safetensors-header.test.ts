import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isBerthError } from '../../src/errors/berth-error.js'
import { readSafetensorsHeader } from '../../src/formats/safetensors/safetensors-header.js'
import { f32, safetensorsBytes } from '../fixtures/safetensors.js'
import { tempDir } from '../helpers/temp-dir.js'

describe('safetensors header reader', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let n = 0
  before(async () => {
    dir = await tempDir()
  })
  after(() => dir.remove())

  async function read(bytes: Buffer) {
    const path = join(dir.path, `t${n++}.safetensors`)
    await writeFile(path, bytes)
    return readSafetensorsHeader(path, 'model.safetensors')
  }

  it('reads names, dtypes, shapes, spans and metadata', async () => {
    const header = await read(
      safetensorsBytes(
        {
          'encoder.weight': f32([3, 4]),
          'encoder.bias': { dtype: 'BF16', shape: [4], data: Buffer.alloc(8) },
          scalar: { dtype: 'I64', shape: [], data: Buffer.alloc(8) },
          empty: { dtype: 'F16', shape: [0, 5], data: Buffer.alloc(0) },
        },
        { metadata: { format: 'pt' } },
      ),
    )
    assert.deepEqual(header.metadata, { format: 'pt' })
    assert.deepEqual(
      header.tensors.map((t) => [t.name, t.dtype, t.shape, t.end - t.start]),
      [
        ['encoder.weight', 'F32', [3, 4], 48],
        ['encoder.bias', 'BF16', [4], 8],
        ['scalar', 'I64', [], 8],
        ['empty', 'F16', [0, 5], 0],
      ],
    )
  })

  const span = (dtype: string, shape: number[], offsets: [number, number]) => ({
    dtype,
    shape,
    data_offsets: offsets,
  })
  const lies: ReadonlyArray<readonly [string, () => Buffer]> = [
    ['a file shorter than 8 bytes', () => Buffer.from([1, 2, 3])],
    [
      'a header length past the end',
      () => {
        const b = safetensorsBytes({ w: f32([2]) })
        b.writeBigUInt64LE(BigInt(b.length))
        return b
      },
    ],
    [
      'a header length over 100 MB',
      () => {
        const b = safetensorsBytes({ w: f32([2]) })
        b.writeBigUInt64LE(2n ** 62n)
        return b
      },
    ],
    [
      'a header that is not UTF-8',
      () => {
        const b = safetensorsBytes({ w: f32([2]) })
        b[9] = 0xff
        return b
      },
    ],
    [
      'a tensor described by an array',
      () => safetensorsBytes({}, { mutateHeader: (h) => Object.assign(h, { x: [] }) }),
    ],
    [
      'an unknown dtype',
      () => safetensorsBytes({ w: { dtype: 'F128', shape: [1], data: Buffer.alloc(16) } }),
    ],
    [
      'a negative dim',
      () => safetensorsBytes({ w: { dtype: 'U8', shape: [-1], data: Buffer.alloc(0) } }),
    ],
    [
      'a fractional dim',
      () => safetensorsBytes({ w: { dtype: 'U8', shape: [1.5], data: Buffer.alloc(1) } }),
    ],
    [
      'a shape larger than its span',
      () => safetensorsBytes({ w: { dtype: 'F32', shape: [3], data: Buffer.alloc(8) } }),
    ],
    [
      'offsets past the end of the file',
      () =>
        safetensorsBytes(
          { w: f32([2]) },
          { mutateHeader: (h) => Object.assign(h, { v: span('F32', [2], [8, 16]) }) },
        ),
    ],
    [
      'overlapping tensors',
      () =>
        safetensorsBytes(
          { a: f32([2]), b: f32([2]) },
          { mutateHeader: (h) => Object.assign(h, { b: span('F32', [2], [4, 12]) }) },
        ),
    ],
    [
      'a gap between tensors',
      () =>
        safetensorsBytes(
          { a: f32([2]), b: f32([1]) },
          { mutateHeader: (h) => Object.assign(h, { b: span('F32', [1], [12, 16]) }) },
        ),
    ],
    ['trailing bytes', () => safetensorsBytes({ w: f32([2]) }, { trailing: Buffer.from('extra') })],
    [
      'reversed offsets',
      () =>
        safetensorsBytes(
          { w: f32([0]) },
          { mutateHeader: (h) => Object.assign(h, { w: span('F32', [0], [4, 0]) }) },
        ),
    ],
    ['non-string metadata', () => safetensorsBytes({ w: f32([1]) }, { metadata: { epochs: 3 } })],
  ]
  for (const [what, make] of lies) {
    it(`refuses ${what}`, async () => {
      await assert.rejects(read(make()), (err) => isBerthError(err, 'safetensors_invalid'))
    })
  }
})
