import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isBerthError } from '../errors/berth-error.js'
import type { Signature, TensorSpec, WireTensor } from '../tensors/tensor.js'
import { checkSizes, heldBytes, requestBytes } from './check-sizes.js'

const f32 = (name: string, shape: number[]): WireTensor => ({
  name,
  datatype: 'FP32',
  shape,
  data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * 4),
})
const spec = (name: string, shape: (number | string)[], datatype = 'FP32'): TensorSpec => ({
  name,
  datatype: datatype as TensorSpec['datatype'],
  shape,
})
/** `c = a · b` as the MatMul fixture declares it: every dim named. */
const MATMUL: Signature = {
  inputs: [spec('a', ['n', 'k']), spec('b', ['j', 'm'])],
  outputs: [spec('c', ['n', 'm'])],
}
const GIB = 1024 ** 3

describe('request sizes', () => {
  it("binds the outputs' named dims to the inputs' sizes", () => {
    const bytes = requestBytes(MATMUL, [f32('a', [40000, 1]), f32('b', [1, 40000])], null)
    assert.deepEqual(bytes, {
      inputs: 2 * 40000 * 4,
      outputs: 40000 * 40000 * 4,
      largest: { name: 'c', shape: [40000, 40000] },
    })
    assert.equal(heldBytes(bytes), 2 * 40000 * 4 + 2 * 40000 * 40000 * 4)
  })

  it('counts fixed dims, scalars, and only the outputs asked for', () => {
    const signature: Signature = {
      inputs: [spec('x', ['batch', 3])],
      outputs: [spec('y', ['batch', 10]), spec('s', [], 'INT64'), spec('z', [2, 2], 'FP64')],
    }
    const x = [f32('x', [5, 3])]
    assert.equal(requestBytes(signature, x, null).outputs, 5 * 10 * 4 + 8 + 2 * 2 * 8)
    assert.equal(requestBytes(signature, x, ['s']).outputs, 8)
  })

  it('counts nothing it cannot know: unnamed or unbound dims, types of no fixed size', () => {
    const signature: Signature = {
      inputs: [spec('x', ['?', '?'])],
      outputs: [
        // Two unnamed dims are not one dim: `?` binds nothing.
        spec('y', ['?']),
        spec('len', ['len']),
        spec('text', ['?'], 'BYTES'),
        spec('any', ['*'], 'ANY'),
        spec('onnx', ['?'], 'ORT_string'),
      ],
    }
    assert.deepEqual(requestBytes(signature, [f32('x', [7, 9])], null), {
      inputs: 7 * 9 * 4,
      outputs: 0,
    })
  })

  it('binds a name the inputs give two sizes to the smaller: never more than the outputs take', () => {
    const signature: Signature = {
      inputs: [spec('a', ['n', 4]), spec('b', ['n', 4])],
      outputs: [spec('y', ['n', 4])],
    }
    const bytes = requestBytes(signature, [f32('a', [10, 4]), f32('b', [3, 4])], null)
    assert.equal(bytes.outputs, 3 * 4 * 4)
  })

  it('refuses the [40000,1]·[1,40000] matmul before it runs, naming the output', () => {
    const inputs = [f32('a', [40000, 1]), f32('b', [1, 40000])]
    assert.throws(
      () => checkSizes(MATMUL, inputs, null, { memoryBytes: 4 * GIB, maxTensorBytes: GIB }),
      (err) =>
        isBerthError(err, 'inference_output_too_large') &&
        err.kind === 'too_large' &&
        err.details?.output === 'c' &&
        JSON.stringify(err.details?.shape) === '[40000,40000]' &&
        err.details?.output_bytes === 6_400_000_000 &&
        err.details?.memory_bytes === 4 * GIB,
    )
  })

  it('holds each output twice against the memory, and inputs plus outputs against the cap', () => {
    const inputs = [f32('a', [1000, 1]), f32('b', [1, 1000])]
    // 8,000 bytes in, 4,000,000 out.
    const fits = { memoryBytes: 8_008_000, maxTensorBytes: 4_008_000 }
    assert.equal(checkSizes(MATMUL, inputs, null, fits).outputs, 4_000_000)
    for (const limits of [
      { ...fits, memoryBytes: fits.memoryBytes - 1 },
      { ...fits, maxTensorBytes: fits.maxTensorBytes - 1 },
    ]) {
      assert.throws(
        () => checkSizes(MATMUL, inputs, null, limits),
        (err) => isBerthError(err, 'inference_output_too_large'),
      )
    }
  })

  it('refuses inputs past the memory or the cap, whatever the outputs', () => {
    const signature: Signature = { inputs: [spec('x', ['?'])], outputs: [spec('y', ['?'])] }
    const x = [f32('x', [1000])]
    assert.equal(
      checkSizes(signature, x, null, { memoryBytes: 4000, maxTensorBytes: 4000 }).inputs,
      4000,
    )
    for (const limits of [
      { memoryBytes: 3999, maxTensorBytes: GIB },
      { memoryBytes: GIB, maxTensorBytes: 3999 },
    ]) {
      assert.throws(
        () => checkSizes(signature, x, null, limits),
        (err) =>
          isBerthError(err, 'inference_input_too_large') &&
          err.details?.input_bytes === 4000 &&
          err.details?.limit_bytes === 3999,
      )
    }
  })
})
