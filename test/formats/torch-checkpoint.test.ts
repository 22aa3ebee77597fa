import assert from 'node:assert/strict'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isBerthError } from '../../src/errors/berth-error.js'
import type { ErrorCode } from '../../src/errors/error-codes.js'
import { readTorchCheckpoint } from '../../src/formats/pytorch/torch-checkpoint.js'
import { makeEvilPickles, makeTorchFixtures, torchSkipReason } from '../fixtures/torch-fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'

describe('torch checkpoints: hostile pickles (standard library fixtures)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let marker: string
  before(async () => {
    dir = await tempDir()
    marker = join(dir.path, 'PWNED')
    await makeEvilPickles(dir.path, marker)
  })
  after(() => dir.remove())

  const read = (name: string) => readTorchCheckpoint(join(dir.path, name), name)

  it('reads a well-formed tensor written by hand', async () => {
    const checkpoint = await read('ok_tensor.pt')
    assert.deepEqual(checkpoint, {
      kind: 'state_dict',
      tensors: [
        {
          name: 'w',
          dtype: 'F32',
          shape: [2, 2],
          stride: [2, 1],
          storageOffset: 0,
          storageEntry: 'archive/data/0',
        },
      ],
    })
  })

  const refusals: ReadonlyArray<readonly [string, ErrorCode, string | undefined]> = [
    ['os_system.pt', 'unsafe_pickle', 'posix.system'],
    ['legacy_os_system.pt', 'unsafe_pickle', undefined],
    ['builtins_eval.pt', 'unsafe_pickle', 'builtins.eval'],
    ['module_global.pt', 'unsafe_pickle', '__main__.MLP'],
    ['oob_view.pt', 'pytorch_invalid', undefined],
    ['storage_size_lie.pt', 'pytorch_invalid', undefined],
    ['missing_storage.pt', 'pytorch_invalid', undefined],
  ]
  for (const [file, code, global] of refusals) {
    it(`refuses ${file} with ${code}${global ? ` naming ${global}` : ''}`, async () => {
      await assert.rejects(read(file), (err) => {
        assert.ok(isBerthError(err, code), String(err))
        assert.equal(err.details?.file, file)
        if (global !== undefined) assert.equal(err.details?.global, global)
        return true
      })
    })
  }

  it('never ran a payload', async () => {
    await assert.rejects(stat(marker), { code: 'ENOENT' })
  })
})

describe('torch checkpoints: real files from python3-torch', async () => {
  const skip = await torchSkipReason()
  let dir: Awaited<ReturnType<typeof tempDir>>
  before(async () => {
    dir = await tempDir()
    if (skip === undefined) await makeTorchFixtures(dir.path)
  })
  after(() => dir.remove())
  const read = (name: string) => readTorchCheckpoint(join(dir.path, name), name)

  it('reads a state_dict: names, dtypes, shapes', { skip }, async () => {
    const checkpoint = await read('mlp_state_dict.pt')
    assert.equal(checkpoint.kind, 'state_dict')
    assert.deepEqual(
      checkpoint.kind === 'state_dict'
        ? checkpoint.tensors.map((t) => [t.name, t.dtype, t.shape])
        : [],
      [
        ['fc1.weight', 'F32', [32, 16]],
        ['fc1.bias', 'F32', [32]],
        ['fc2.weight', 'F32', [4, 32]],
        ['fc2.bias', 'F32', [4]],
      ],
    )
  })

  it('reads every dtype, a transposed view and views sharing a storage', { skip }, async () => {
    const checkpoint = await read('mixed_dtypes.pt')
    assert.equal(checkpoint.kind, 'state_dict')
    const byName = new Map(
      checkpoint.kind === 'state_dict' ? checkpoint.tensors.map((t) => [t.name, t]) : [],
    )
    assert.deepEqual(
      [...byName.values()].map((t) => [t.name, t.dtype]),
      [
        ['f32', 'F32'],
        ['f16', 'F16'],
        ['bf16', 'BF16'],
        ['i64', 'I64'],
        ['i32', 'I32'],
        ['u8', 'U8'],
        ['bool', 'BOOL'],
        ['f64scalar', 'F64'],
        ['transposed', 'F32'],
        ['view_a', 'F32'],
        ['view_b', 'F32'],
        ['nested.deep', 'I16'],
      ],
    )
    assert.deepEqual(byName.get('f64scalar')?.shape, [])
    assert.deepEqual(byName.get('transposed')?.stride, [1, 3])
    assert.equal(byName.get('view_a')?.storageEntry, byName.get('view_b')?.storageEntry)
    assert.equal(byName.get('view_b')?.storageOffset, 5)
  })

  it('flattens a nested checkpoint', { skip }, async () => {
    const checkpoint = await read('nested_checkpoint.pt')
    assert.deepEqual(
      checkpoint.kind === 'state_dict' ? checkpoint.tensors.map((t) => t.name) : [],
      ['model.fc1.weight', 'model.fc1.bias', 'model.fc2.weight', 'model.fc2.bias'],
    )
  })

  it('recognises TorchScript without opening its code', { skip }, async () => {
    assert.deepEqual(await read('mlp_scripted.pt'), { kind: 'torchscript' })
  })

  it('refuses a pickled nn.Module and the legacy format', { skip }, async () => {
    await assert.rejects(read('mlp_full_module.pt'), (err) => {
      assert.ok(isBerthError(err, 'unsafe_pickle'))
      assert.equal(err.details?.global, '__main__.MLP')
      return true
    })
    await assert.rejects(read('mlp_legacy.pt'), (err) => isBerthError(err, 'unsafe_pickle'))
  })
})
