import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeStrings } from '../tensors/tensor-data.js'
import { warmUpInputs } from './warm-up.js'

describe('warm-up inputs', () => {
  it('makes one request from the signature: named dims 1, zeros, short texts', () => {
    const inputs = warmUpInputs({
      inputs: [
        { name: 'x', datatype: 'FP32', shape: ['batch', 3] },
        { name: 'ids', datatype: 'INT64', shape: [2, 'seq'] },
        { name: 'text', datatype: 'BYTES', shape: ['n'] },
      ],
      outputs: [],
    })
    assert.ok(inputs !== undefined)
    const [x, ids, text] = inputs
    assert.deepEqual([x?.shape, x?.data.byteLength], [[1, 3], 12])
    assert.ok(x?.data.every((b) => b === 0))
    assert.deepEqual([ids?.shape, ids?.data.byteLength], [[2, 1], 16])
    assert.deepEqual(decodeStrings(text?.data ?? new Uint8Array()), ['warm-up'])
  })

  it('sends nothing when an input type is not known (TorchScript says none)', () => {
    const signature = {
      inputs: [{ name: 'x', datatype: 'ANY' as const, shape: ['*'] }],
      outputs: [],
    }
    assert.equal(warmUpInputs(signature), undefined)
  })
})
