import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { isBerthError } from '../../src/errors/berth-error.js'
import { openWeights } from '../../src/formats/weights-reader.js'
import { safetensorsBytes, type TensorInput } from '../fixtures/safetensors.js'
import { makeTorchFixtures, torchSkipReason } from '../fixtures/torch-fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

const details = (source: 'safetensors' | 'pytorch', files: string[]) => ({ source, files })

const bytes = (...values: number[]) => Buffer.from(values)

describe('weights reader: safetensors', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  const first: Record<string, TensorInput> = {
    'encoder.layer.0.weight': { dtype: 'F32', shape: [2, 2], data: bytes(...Array(16).keys()) },
    'encoder.layer.0.bias': { dtype: 'BF16', shape: [2], data: bytes(1, 2, 3, 4) },
    empty: { dtype: 'I64', shape: [0, 3], data: Buffer.alloc(0) },
    flag: { dtype: 'BOOL', shape: [], data: bytes(1) },
  }
  const second: Record<string, TensorInput> = {
    'head.weight': { dtype: 'F16', shape: [3], data: bytes(9, 8, 7, 6, 5, 4) },
    'head.ids': { dtype: 'U64', shape: [1], data: bytes(255, 0, 0, 0, 0, 0, 0, 1) },
  }
  before(async () => {
    dir = await tempDir()
    await writeFile(join(dir.path, 'model-00001.safetensors'), safetensorsBytes(first))
    await writeFile(join(dir.path, 'model-00002.safetensors'), safetensorsBytes(second))
  })
  after(() => dir.remove())

  it('lists every tensor of every shard and returns each one byte for byte', async () => {
    const reader = await openWeights(
      dir.path,
      details('safetensors', ['model-00001.safetensors', 'model-00002.safetensors']),
    )
    try {
      const all = { ...first, ...second }
      assert.deepEqual(
        reader.tensors.map((t) => [t.name, t.dtype, t.shape, t.byteLength]),
        Object.entries(all).map(([name, t]) => [name, t.dtype, t.shape, t.data.length]),
      )
      for (const [name, t] of Object.entries(all)) {
        assert.deepEqual(await reader.bytes(name), t.data, name)
        assert.deepEqual(await drain(await reader.stream(name)), t.data, name)
      }
      // The bytes are exactly the file's own span for the tensor.
      const file = await readFile(join(dir.path, 'model-00002.safetensors'))
      const span = file.subarray(file.length - 8)
      assert.deepEqual(await reader.bytes('head.ids'), span)
      await assert.rejects(reader.bytes('missing'), (err) => isBerthError(err, 'tensor_not_found'))
    } finally {
      reader.close()
    }
  })
})

describe('weights reader: PyTorch state_dicts (Debian python3-torch fixtures)', async () => {
  const skip = await torchSkipReason()
  let dir: Awaited<ReturnType<typeof tempDir>>
  before(async () => {
    dir = await tempDir()
    if (skip === undefined) await makeTorchFixtures(dir.path)
  })
  after(() => dir.remove())

  it('returns what t.contiguous() holds for every dtype, strided views and shared storages', {
    skip,
  }, async () => {
    const expected = JSON.parse(
      await readFile(join(dir.path, 'mixed_dtypes.expected.json'), 'utf8'),
    ) as Record<string, { dtype: string; shape: number[]; hex: string }>
    const reader = await openWeights(dir.path, details('pytorch', ['mixed_dtypes.pt']))
    try {
      assert.deepEqual(
        reader.tensors.map((t) => [t.name, t.dtype, t.shape]),
        Object.entries(expected).map(([name, e]) => [name, e.dtype, e.shape]),
      )
      for (const [name, e] of Object.entries(expected)) {
        const want = Buffer.from(e.hex, 'hex')
        assert.deepEqual(await reader.bytes(name), want, name)
        assert.deepEqual(await drain(await reader.stream(name)), want, `${name} (stream)`)
      }
    } finally {
      reader.close()
    }
  })

  it('refuses to read a TorchScript module as weights', { skip }, async () => {
    await assert.rejects(openWeights(dir.path, details('pytorch', ['mlp_scripted.pt'])), (err) =>
      isBerthError(err, 'pytorch_invalid'),
    )
  })
})
