import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { Tokenizer } from '@huggingface/tokenizers'
import OpenAI from 'openai'
import { tokenClassifierModel, tokenEncoderModel } from '../fixtures/onnx-models.js'
import { DIMS, SENTENCE_TRANSFORMERS, textModelFiles } from '../fixtures/text-models.js'
import { TOKENIZER_CONFIG, tinyVocab, wordPieceTokenizer } from '../fixtures/tokenizers.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, uploadAndWait } from '../helpers/uploads.js'

const TEXTS = ['Hello world!', 'the model is serving on cpu', 'berth']

/** OpenAI's own npm client, unchanged, pointed at berth's /v1. */
describe('POST /v1/embeddings (OpenAI-compatible)', () => {
  let t: TestApp
  let ns: string
  let client: OpenAI
  const vocab = tinyVocab()
  const tokenizer = new Tokenizer(wordPieceTokenizer(vocab), TOKENIZER_CONFIG)
  let reference: number[][]

  const close = (a: readonly number[], b: readonly number[]) =>
    a.length === b.length && a.every((x, i) => Math.abs(x - (b[i] as number)) < 1e-5)

  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'openai')
    await uploadAndWait(
      t,
      ns,
      { name: 'embedder', model_format: 'huggingface', task_type: 'embedding', memory_gb: '0.5' },
      textModelFiles(vocab, tokenEncoderModel(vocab.length, DIMS), {}, SENTENCE_TRANSFORMERS),
    )
    await uploadAndWait(
      t,
      ns,
      {
        name: 'classifier',
        model_format: 'huggingface',
        task_type: 'classification',
        memory_gb: '0.5',
      },
      textModelFiles(vocab, tokenClassifierModel(vocab.length, 3)),
    )
    const res = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/embedder_1_0_0/infer`,
      key: BOOTSTRAP_KEY,
      body: { input: TEXTS },
    })
    assert.equal(res.statusCode, 200, res.body)
    reference = res.json().embeddings
    await t.app.server.listen({ host: '127.0.0.1', port: 0 })
    const { port } = t.app.server.server.address() as AddressInfo
    client = new OpenAI({
      apiKey: BOOTSTRAP_KEY,
      baseURL: `http://127.0.0.1:${port}/v1`,
      maxRetries: 0,
    })
  })
  after(() => t.close())

  it("embeds texts as the model's endpoint does (the client's default base64 and float)", async () => {
    for (const encoding_format of [undefined, 'float'] as const) {
      const answer = await client.embeddings.create({
        model: `${ns}/embedder_1_0_0`,
        input: TEXTS,
        ...(encoding_format === undefined ? {} : { encoding_format }),
      })
      assert.equal(answer.object, 'list')
      assert.equal(answer.model, `${ns}/embedder_1_0_0`)
      assert.equal(answer.data.length, TEXTS.length)
      for (const item of answer.data) {
        assert.equal(item.object, 'embedding')
        assert.ok(close(item.embedding, reference[item.index] as number[]), `text ${item.index}`)
      }
      const tokens = TEXTS.reduce((sum, text) => sum + tokenizer.encode(text).ids.length, 0)
      assert.deepEqual(answer.usage, { prompt_tokens: tokens, total_tokens: tokens })
    }
  })

  it('finds the model by namespace name and model name, or by its id alone', async () => {
    for (const model of ['openai/embedder', 'embedder_1_0_0']) {
      const answer = await client.embeddings.create({ model, input: TEXTS[1] as string })
      assert.equal(answer.data.length, 1)
      assert.ok(close(answer.data[0]?.embedding ?? [], reference[1] as number[]), model)
    }
  })

  it('takes token ids, and shortens embeddings to dimensions (normalised again)', async () => {
    const ids = TEXTS.map((text) => tokenizer.encode(text).ids)
    const answer = await client.embeddings.create({ model: 'embedder_1_0_0', input: ids })
    answer.data.forEach((item) => {
      assert.ok(close(item.embedding, reference[item.index] as number[]), `row ${item.index}`)
    })
    const one = await client.embeddings.create({
      model: 'embedder_1_0_0',
      input: ids[0] as number[],
    })
    assert.ok(close(one.data[0]?.embedding ?? [], reference[0] as number[]))

    const short = await client.embeddings.create({
      model: 'embedder_1_0_0',
      input: 'hello world',
      dimensions: 4,
    })
    const row = short.data[0]?.embedding ?? []
    assert.equal(row.length, 4)
    assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-5)
  })

  it("refuses in OpenAI's error shape, which its client raises as typed errors", async () => {
    await assert.rejects(client.embeddings.create({ model: 'nope', input: 'x' }), (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError)
      assert.equal(err.code, 'model_not_found')
      return true
    })
    await assert.rejects(
      client.embeddings.create({ model: 'classifier_1_0_0', input: 'x' }),
      (err) => err instanceof OpenAI.BadRequestError && err.code === 'task_not_supported',
    )
    await assert.rejects(
      client.embeddings.create({ model: 'embedder_1_0_0', input: [[2, 10_000, 3]] }),
      (err) =>
        err instanceof OpenAI.BadRequestError &&
        err.code === 'inference_failed' &&
        /outside the model's vocabulary of 64/.test(err.message),
    )
    const stranger = new OpenAI({ apiKey: 'sk_wrong', baseURL: client.baseURL, maxRetries: 0 })
    await assert.rejects(
      stranger.embeddings.create({ model: 'embedder_1_0_0', input: 'x' }),
      OpenAI.AuthenticationError,
    )
    const raw = await t.request({
      method: 'POST',
      url: '/v1/embeddings',
      key: BOOTSTRAP_KEY,
      body: { model: 'embedder_1_0_0', input: [] },
    })
    assert.equal(raw.statusCode, 422, raw.body)
    const { error } = raw.json()
    assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type'])
    assert.equal(error.type, 'invalid_request_error')
    assert.equal(error.param, 'input')
  })
})
