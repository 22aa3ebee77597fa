import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { isBerthError } from '../errors/berth-error.js'
import { decodeBody, JsonCodec } from './json-codec.js'
import { encodeInferResponse } from './oip-codec.js'

const body = (rows: number, extra = '') =>
  Buffer.from(
    `{"inputs":[{"name":"x","datatype":"FP32","shape":[${rows},2],"data":[${new Array(rows).fill('[1.5,-2]').join(',')}]}]${extra}}`,
  )

describe('decoding bodies and encoding answers', () => {
  const codec = new JsonCodec({ inlineBytes: 1024, threads: 1, idleMs: 60_000 })
  after(() => codec.close())

  it('decodes a body past inlineBytes on a thread, as on the event loop, taking the body over', async () => {
    const big = body(10_000, ',"id":"r1","outputs":[{"name":"y"}]')
    const expected = decodeBody(Buffer.from(big), undefined)
    const decoded = await codec.decode(big, undefined)
    assert.deepEqual(decoded, expected)
    // The body's memory moved to the thread: nothing was copied.
    assert.equal(big.buffer.byteLength, 0)
    // A small one stays here.
    const small = body(2)
    assert.deepEqual(await codec.decode(small, undefined), decodeBody(small, undefined))
    assert.equal(small.length > 0, true)
  })

  it('encodes an answer past inlineBytes on a thread, as on the event loop, leaving the outputs be', async () => {
    const values = Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i))
    const data = new Uint8Array(values.buffer)
    const outputs = [
      { name: 'y', datatype: 'FP32' as const, shape: [2500, 2], data },
      { name: 'z', datatype: 'INT64' as const, shape: [1], data: new Uint8Array(8).fill(1) },
    ]
    const meta = { modelName: 'm', modelVersion: '1.0.0', id: 'r1' }
    for (const binary of [new Set<string>(), new Set(['z']), true as const]) {
      const expected = encodeInferResponse(meta, outputs, binary)
      assert.deepEqual(await codec.encode(meta, outputs, binary), expected)
    }
    // Copied over, not moved: a batch's outputs share their memory with other answers.
    assert.equal(data.byteLength, 20_000)
    // Its refusals keep their codes.
    const bytes = {
      name: 's',
      datatype: 'BYTES' as const,
      shape: [1],
      data: new Uint8Array(5000).fill(255),
    }
    await assert.rejects(codec.encode(meta, [bytes, ...outputs], new Set()), (err) =>
      isBerthError(err, 'inference_failed'),
    )
  })

  it('ends a thread that stays idle, and starts one for the next body', async () => {
    const quick = new JsonCodec({ inlineBytes: 1024, threads: 2, idleMs: 50 })
    try {
      // Two bodies at once start two threads. (Counted before they finish: on a busy machine the
      // first may finish and idle out while the second thread is still starting.)
      const both = Promise.all([
        quick.decode(body(5000), undefined),
        quick.decode(body(5000), undefined),
      ])
      assert.equal(quick.threads, 2)
      await both
      for (let waited = 0; quick.threads > 0 && waited < 5000; waited += 20) {
        await new Promise((r) => setTimeout(r, 20))
      }
      assert.equal(quick.threads, 0)
      const again = await quick.decode(body(5000), undefined)
      assert.ok('request' in again)
      assert.equal(again.request.inputs[0]?.shape[0], 5000)
    } finally {
      await quick.close()
    }
  })

  it("answers a thread's refusal with its code and details", async () => {
    const wrong = Buffer.from(body(10_000).toString().replace('[10000,2]', '[10001,2]'))
    await assert.rejects(
      codec.decode(wrong, undefined),
      (err) => isBerthError(err, 'input_data_invalid') && err.details?.input === 'x',
    )
    await assert.rejects(codec.decode(Buffer.alloc(4096, '{'), undefined), (err) =>
      isBerthError(err, 'infer_request_invalid'),
    )
  })

  it('brings back only texts from a task body, however deep the rest', async () => {
    const texts = Buffer.from(JSON.stringify({ input: new Array(500).fill('some text') }))
    assert.deepEqual(await codec.decode(texts, undefined), {
      task: new Array(500).fill('some text'),
    })
    const deep = Buffer.from(`{"input":${'['.repeat(50_000)}${']'.repeat(50_000)}}`)
    assert.deepEqual(await codec.decode(deep, undefined), { task: undefined })
  })

  it('decodes binary requests on a thread: the tensors are views of the body it took', async () => {
    const header = Buffer.from(
      JSON.stringify({
        id: 'y'.repeat(2000),
        inputs: [{ name: 'x', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } }],
      }),
    )
    const whole = Buffer.concat([header, Buffer.from(new Float32Array([3, 4]).buffer)])
    const decoded = await codec.decode(whole, header.length)
    assert.ok('request' in decoded)
    const x = decoded.request.inputs[0]
    assert.deepEqual(Array.from(new Float32Array(Uint8Array.from(x?.data ?? []).buffer)), [3, 4])
    assert.equal(x?.data.buffer.byteLength, header.length + 8)
  })
})
