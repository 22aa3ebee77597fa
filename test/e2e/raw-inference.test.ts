import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Tokenizer } from '@huggingface/tokenizers'
import {
  mlpModel,
  multiModel,
  tokenClassifierModel,
  tokenEncoderModel,
} from '../fixtures/onnx-models.js'
import {
  DIMS,
  MAX_POSITIONS,
  SENTENCE_TRANSFORMERS,
  textModelFiles,
} from '../fixtures/text-models.js'
import { TOKENIZER_CONFIG, tinyVocab, wordPieceTokenizer } from '../fixtures/tokenizers.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, uploadAndWait } from '../helpers/uploads.js'

const TEXTS = ['Hello world!', 'the model is serving on cpu', 'berth']
/** Mixpeek's `POST /v1/inference`: models by inference_name or feature_uri, texts or tensors. */
describe('POST /v1/inference', () => {
  let t: TestApp
  let ns: string
  const vocab = tinyVocab()
  const tokenizer = new Tokenizer(wordPieceTokenizer(vocab), TOKENIZER_CONFIG)

  const inference = (body: unknown, namespace: string | null = ns) =>
    t.request({
      method: 'POST',
      url: '/v1/inference',
      key: BOOTSTRAP_KEY,
      body,
      headers: namespace === null ? {} : { 'x-namespace': namespace },
    })
  const endpoint = (modelId: string, body: unknown) =>
    t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/${modelId}/infer`,
      key: BOOTSTRAP_KEY,
      body,
    })
  const close = (a: readonly number[], b: readonly number[]) =>
    a.length === b.length && a.every((x, i) => Math.abs(x - (b[i] as number)) < 1e-5)

  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'raw-inference')
    const uploads = [
      [
        { name: 'embedder', model_format: 'huggingface', task_type: 'embedding' },
        textModelFiles(vocab, tokenEncoderModel(vocab.length, DIMS), {}, SENTENCE_TRANSFORMERS),
      ],
      [
        { name: 'classifier', model_format: 'huggingface', task_type: 'classification' },
        textModelFiles(vocab, tokenClassifierModel(vocab.length, 3), {
          id2label: { 0: 'negative', 1: 'neutral', 2: 'positive' },
        }),
      ],
      [{ name: 'mlp', model_format: 'onnx' }, { 'model.onnx': mlpModel(4, 8, 2, 1) }],
      [{ name: 'multi', model_format: 'onnx' }, { 'model.onnx': multiModel() }],
      [
        { name: 'lazy', model_format: 'onnx', deploy: 'false' },
        { 'model.onnx': mlpModel(4, 8, 2, 3) },
      ],
    ] as const
    for (const [fields, files] of uploads) {
      const answer = await uploadAndWait(t, ns, { memory_gb: '0.5', ...fields }, files)
      assert.notEqual(answer.deployment_status, 'failed', JSON.stringify(answer))
    }
  })
  after(() => t.close())

  it("embeds a text and texts as the model's endpoint does, with the tokens read", async () => {
    const reference = await endpoint('embedder_1_0_0', { input: TEXTS })
    assert.equal(reference.statusCode, 200, reference.body)
    const want = reference.json().embeddings as number[][]

    const one = await inference({ inference_name: 'embedder_1_0_0', inputs: { text: TEXTS[0] } })
    assert.equal(one.statusCode, 200, one.body)
    const answer = one.json()
    assert.equal(answer.provider, 'berth')
    assert.equal(answer.model, 'embedder_1_0_0')
    assert.equal(answer.cached, false)
    assert.equal(typeof answer.latency_ms, 'number')
    assert.ok(close(answer.data, want[0] as number[]), 'the text embedding')
    const tokens = tokenizer.encode(TEXTS[0] as string).ids.length
    assert.deepEqual(answer.tokens_used, { prompt: tokens, total: tokens })

    const many = await inference({
      feature_uri: 'mixpeek://embedder@1.0.0/embedding',
      inputs: { texts: TEXTS },
      parameters: {},
    })
    assert.equal(many.statusCode, 200, many.body)
    const rows = many.json().data as number[][]
    assert.equal(rows.length, TEXTS.length)
    for (const [i, row] of rows.entries()) assert.ok(close(row, want[i] as number[]), `text ${i}`)
    const all = TEXTS.reduce((sum, text) => sum + tokenizer.encode(text).ids.length, 0)
    assert.equal(many.json().tokens_used.prompt, all)
    // The model's name stands for its highest deployed version.
    const byName = await inference({ inference_name: 'embedder', inputs: { texts: TEXTS } })
    assert.deepEqual(byName.json().data, rows)
  })

  it('keeps the first dimensions, normalises, and refuses to cut a text when told', async () => {
    const cut = await inference({
      inference_name: 'embedder_1_0_0',
      inputs: { text: 'hello world' },
      parameters: { dimensions: 4, normalize: true },
    })
    assert.equal(cut.statusCode, 200, cut.body)
    const row = cut.json().data as number[]
    assert.equal(row.length, 4)
    assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-5, 'unit length after the cut')

    const wide = await inference({
      inference_name: 'embedder_1_0_0',
      inputs: { text: 'hello' },
      parameters: { dimensions: DIMS + 1 },
    })
    assert.equal(wide.statusCode, 400)
    assert.equal(wide.json().error.code, 'infer_request_invalid')

    const long = 'hello world '.repeat(20)
    const truncated = await inference({ inference_name: 'embedder_1_0_0', inputs: { text: long } })
    assert.equal(truncated.statusCode, 200, truncated.body)
    assert.equal(truncated.json().tokens_used.prompt, MAX_POSITIONS)
    const refused = await inference({
      inference_name: 'embedder_1_0_0',
      inputs: { text: long },
      parameters: { truncate: false },
    })
    assert.equal(refused.statusCode, 400)
    assert.equal(refused.json().error.code, 'text_too_long')

    const wrongType = await inference({
      inference_name: 'embedder_1_0_0',
      inputs: { text: 'hello' },
      parameters: { normalize: 'yes' },
    })
    assert.equal(wrongType.statusCode, 400)
    assert.equal(wrongType.json().error.code, 'infer_request_invalid')
  })

  it('classifies: labels with scores best first, top_k of them', async () => {
    const reference = await endpoint('classifier_1_0_0', { input: TEXTS })
    assert.equal(reference.statusCode, 200, reference.body)
    const want = reference.json().predictions as { label: string; score: number }[][]

    const one = await inference({ inference_name: 'classifier_1_0_0', inputs: { text: TEXTS[1] } })
    assert.equal(one.statusCode, 200, one.body)
    assert.deepEqual(one.json().data, want[1])
    assert.deepEqual((one.json().data as { label: string }[]).map((p) => p.label).sort(), [
      'negative',
      'neutral',
      'positive',
    ])
    const top = await inference({
      inference_name: 'classifier_1_0_0',
      inputs: { texts: TEXTS },
      parameters: { top_k: 1 },
    })
    assert.equal(top.statusCode, 200, top.body)
    assert.deepEqual(
      top.json().data,
      want.map((ranked) => ranked.slice(0, 1)),
    )
  })

  it('runs a tensor model on named tensors or a plain array, as /infer does', async () => {
    const values = [
      [1, 2, 3, 4],
      [0.5, -1, 2, 0],
    ]
    const reference = await endpoint('mlp_1_0_0', {
      inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', data: values }],
    })
    assert.equal(reference.statusCode, 200, reference.body)
    const want = reference.json().outputs[0]

    const named = await inference({
      inference_name: 'mlp_1_0_0',
      inputs: { x: { shape: [2, 4], datatype: 'FP32', data: values } },
    })
    assert.equal(named.statusCode, 200, named.body)
    assert.deepEqual(named.json().data, {
      y: { datatype: 'FP32', shape: [2, 2], data: want.data },
    })
    assert.equal(named.json().tokens_used, null)

    for (const inputs of [{ data: values }, { x: values }]) {
      const plain = await inference({ feature_uri: 'mixpeek://mlp@v1.0.0/y', inputs })
      assert.equal(plain.statusCode, 200, plain.body)
      assert.deepEqual(plain.json().data.y.data, want.data)
    }

    const ragged = await inference({ inference_name: 'mlp_1_0_0', inputs: { x: [[1, 2], [3]] } })
    assert.equal(ragged.statusCode, 400, ragged.body)
  })

  it('answers 64-bit integers exactly, as /v2 writes them', async () => {
    const res = await inference({
      inference_name: 'multi_1_0_0',
      inputs: {
        x: { shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] },
        k: { shape: [], datatype: 'INT64', data: ['9007199254740994'] },
        m: { shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] },
      },
    })
    assert.equal(res.statusCode, 200, res.body)
    assert.match(res.body, /"k1":\{"datatype":"INT64","shape":\[\],"data":\[9007199254740995\]\}/)
  })

  it('holds a JSON body to the JSON bound whatever its headers claim', async () => {
    const big = JSON.stringify({
      inference_name: 'mlp_1_0_0',
      inputs: { data: [[1, 2, 3, 4]] },
      padding: 'x'.repeat(17 * 1024 ** 2),
    })
    for (const url of ['/v1/inference', '/v1/embeddings']) {
      const res = await t.request({
        method: 'POST',
        url,
        key: BOOTSTRAP_KEY,
        body: big,
        headers: {
          'content-type': 'application/json',
          'x-namespace': ns,
          // The binary extension's header says nothing of a body that is all JSON.
          'inference-header-content-length': '0',
        },
      })
      assert.equal(res.statusCode, 413, `${url}: ${res.body.slice(0, 200)}`)
      assert.match(res.body, /request_body_too_large/)
    }
  })

  it('loads an on-demand model for its first request', async () => {
    const res = await inference({ inference_name: 'lazy_1_0_0', inputs: { data: [[1, 2, 3, 4]] } })
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(res.json().data.y.shape, [1, 2])
  })

  it('answers clear 4xx for what it cannot run', async () => {
    const cases: [unknown, string | null, number, string][] = [
      [
        { provider: 'openai', model: 'text-embedding-3-large', inputs: { text: 'x' } },
        ns,
        400,
        'provider_not_supported',
      ],
      [{ inputs: { text: 'x' } }, ns, 400, 'infer_request_invalid'],
      [{ inference_name: 'mlp_1_0_0', inputs: { text: 'x' } }, ns, 400, 'task_not_supported'],
      [{ inference_name: 'nope_1_0_0', inputs: { text: 'x' } }, ns, 404, 'model_not_found'],
      [{ feature_uri: 'mixpeek://mlp/y', inputs: { text: 'x' } }, ns, 400, 'infer_request_invalid'],
      [
        { inference_name: 'embedder_1_0_0', inputs: { text: 'x', texts: ['y'] } },
        ns,
        400,
        'infer_request_invalid',
      ],
      [
        { inference_name: 'embedder_1_0_0', inputs: { text: 'x' } },
        null,
        400,
        'namespace_header_missing',
      ],
      [
        { inference_name: 'embedder_1_0_0', inputs: { text: 'x' } },
        'elsewhere',
        404,
        'namespace_not_found',
      ],
    ]
    for (const [body, namespace, status, code] of cases) {
      const res = await inference(body, namespace)
      assert.equal(res.statusCode, status, `${JSON.stringify(body)}: ${res.body}`)
      assert.equal(res.json().error.code, code, JSON.stringify(body))
    }
    const anonymous = await t.request({ method: 'POST', url: '/v1/inference', body: {} })
    assert.equal(anonymous.statusCode, 401)
  })
})
