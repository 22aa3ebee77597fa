import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { isBerthError } from '../errors/berth-error.js'
import { decodeBody, JsonDecoder } from './json-decoder.js'

const body = (rows: number, extra = '') =>
  Buffer.from(
    `{"inputs":[{"name":"x","datatype":"FP32","shape":[${rows},2],"data":[${new Array(rows).fill('[1.5,-2]').join(',')}]}]${extra}}`,
  )

describe('decoding request bodies', () => {
  const decoder = new JsonDecoder({ inlineBytes: 1024, threads: 1 })
  after(() => decoder.close())

  it('decodes a body past inlineBytes on a thread, as on the event loop, taking the body over', async () => {
    const big = body(10_000, ',"id":"r1","outputs":[{"name":"y"}]')
    const expected = decodeBody(Buffer.from(big), undefined)
    const decoded = await decoder.decode(big, undefined)
    assert.deepEqual(decoded, expected)
    // The body's memory moved to the thread: nothing was copied.
    assert.equal(big.buffer.byteLength, 0)
    // A small one stays here.
    const small = body(2)
    assert.deepEqual(await decoder.decode(small, undefined), decodeBody(small, undefined))
    assert.equal(small.length > 0, true)
  })

  it("answers a thread's refusal with its code and details", async () => {
    const wrong = Buffer.from(body(10_000).toString().replace('[10000,2]', '[10001,2]'))
    await assert.rejects(
      decoder.decode(wrong, undefined),
      (err) => isBerthError(err, 'input_data_invalid') && err.details?.input === 'x',
    )
    await assert.rejects(decoder.decode(Buffer.alloc(4096, '{'), undefined), (err) =>
      isBerthError(err, 'infer_request_invalid'),
    )
  })

  it('brings back only texts from a task body, however deep the rest', async () => {
    const texts = Buffer.from(JSON.stringify({ input: new Array(500).fill('some text') }))
    assert.deepEqual(await decoder.decode(texts, undefined), {
      task: new Array(500).fill('some text'),
    })
    const deep = Buffer.from(`{"input":${'['.repeat(50_000)}${']'.repeat(50_000)}}`)
    assert.deepEqual(await decoder.decode(deep, undefined), { task: undefined })
  })

  it('decodes binary requests on a thread: the tensors are views of the body it took', async () => {
    const header = Buffer.from(
      JSON.stringify({
        id: 'y'.repeat(2000),
        inputs: [{ name: 'x', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } }],
      }),
    )
    const whole = Buffer.concat([header, Buffer.from(new Float32Array([3, 4]).buffer)])
    const decoded = await decoder.decode(whole, header.length)
    assert.ok('request' in decoded)
    const x = decoded.request.inputs[0]
    assert.deepEqual(Array.from(new Float32Array(Uint8Array.from(x?.data ?? []).buffer)), [3, 4])
    assert.equal(x?.data.buffer.byteLength, header.length + 8)
  })
})
