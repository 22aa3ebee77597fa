import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { mlpModel, tokenClassifierModel, tokenEncoderModel } from '../fixtures/onnx-models.js'
import { TOKENIZER_CONFIG, tinyVocab, wordPieceTokenizer } from '../fixtures/tokenizers.js'
import { binaryBody } from '../helpers/inference.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, uploadAndWait } from '../helpers/uploads.js'

const TEXTS = ['Hello world!', 'the model is serving on cpu', 'berth']
const LABELS = ['negative', 'neutral', 'positive']

/** Triton's BYTES element framing: each a 4-byte little-endian length, then the bytes. */
function framed(values: readonly string[]): Buffer {
  return Buffer.concat(
    values.flatMap((v) => {
      const bytes = Buffer.from(v, 'utf8')
      const length = Buffer.alloc(4)
      length.writeUInt32LE(bytes.length)
      return [length, bytes]
    }),
  )
}

function unframed(bytes: Buffer): string[] {
  const out: string[] = []
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUInt32LE(at)
    out.push(bytes.toString('utf8', at + 4, at + 4 + length))
    at += 4 + length
  }
  return out
}

/** A binary answer: its JSON header, and each binary output's bytes by name. */
function binaryAnswer(res: { rawPayload: Buffer; headers: Record<string, unknown> }) {
  const length = Number(res.headers['inference-header-content-length'])
  const header = JSON.parse(res.rawPayload.subarray(0, length).toString('utf8'))
  const bytes = new Map<string, Buffer>()
  let at = length
  for (const output of header.outputs) {
    const size = output.parameters?.binary_data_size
    if (size === undefined) continue
    bytes.set(output.name, res.rawPayload.subarray(at, at + size))
    at += size
  }
  return { header, bytes }
}

/** BYTES tensors over /v2, and task models (tokenizer + task_type) taking their texts as one. */
describe('Open Inference Protocol BYTES tensors', () => {
  let t: TestApp
  let ns: string
  const v2 = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    t.request({
      method: 'POST',
      url,
      key: BOOTSTRAP_KEY,
      body,
      headers: { 'x-namespace': 'texts', ...headers },
    })
  const taskBody = (modelId: string, input: string[]) =>
    t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/${modelId}/infer`,
      key: BOOTSTRAP_KEY,
      body: { input },
    })
  const textInput = (texts: readonly string[]) => ({
    name: 'text',
    datatype: 'BYTES',
    shape: [texts.length],
    data: texts,
  })

  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'texts')
    const tokenizer = {
      'tokenizer.json': JSON.stringify(wordPieceTokenizer(tinyVocab())),
      'tokenizer_config.json': JSON.stringify(TOKENIZER_CONFIG),
    }
    const fields = { model_format: 'huggingface', memory_gb: '0.5', deploy: 'true' }
    await uploadAndWait(
      t,
      ns,
      { ...fields, name: 'embedder', task_type: 'embedding' },
      {
        ...tokenizer,
        'config.json': JSON.stringify({ model_type: 'bert', max_position_embeddings: 64 }),
        'onnx/model.onnx': tokenEncoderModel(64, 8),
      },
    )
    await uploadAndWait(
      t,
      ns,
      { ...fields, name: 'classifier', task_type: 'classification' },
      {
        ...tokenizer,
        'config.json': JSON.stringify({
          model_type: 'bert',
          max_position_embeddings: 64,
          id2label: Object.fromEntries(LABELS.map((l, i) => [String(i), l])),
        }),
        'onnx/model.onnx': tokenClassifierModel(64, LABELS.length),
      },
    )
    await uploadAndWait(
      t,
      ns,
      { name: 'mlp', model_format: 'onnx', memory_gb: '0.5', deploy: 'true' },
      { 'model.onnx': mlpModel(4, 8, 3) },
    )
  })
  after(() => t.close())

  it('shows a task model as texts in (BYTES "text" [-1]) and its results out', async () => {
    const meta = async (name: string) =>
      (
        await t.request({
          method: 'GET',
          url: `/v2/models/${name}`,
          key: BOOTSTRAP_KEY,
          headers: { 'x-namespace': 'texts' },
        })
      ).json()
    const embedder = await meta('embedder')
    assert.deepEqual(embedder.inputs, [{ name: 'text', datatype: 'BYTES', shape: [-1] }])
    assert.deepEqual(embedder.outputs, [{ name: 'embeddings', datatype: 'FP32', shape: [-1, -1] }])
    // Not batched across requests (one request's texts are its batch): max_batch_size 0.
    const config = await t.request({
      method: 'GET',
      url: '/v2/models/embedder/config',
      key: BOOTSTRAP_KEY,
      headers: { 'x-namespace': 'texts' },
    })
    assert.equal(config.json().max_batch_size, 0)
    assert.deepEqual(config.json().input, [{ name: 'text', data_type: 'TYPE_STRING', dims: [-1] }])
    assert.deepEqual(config.json().output, [
      { name: 'embeddings', data_type: 'TYPE_FP32', dims: [-1, -1] },
    ])
    const classifier = await meta('classifier')
    assert.deepEqual(classifier.inputs, embedder.inputs)
    assert.deepEqual(classifier.outputs, [
      { name: 'scores', datatype: 'FP32', shape: [-1, -1] },
      { name: 'labels', datatype: 'BYTES', shape: [-1] },
    ])
  })

  it('embeds texts sent as JSON strings, the same numbers as the task body', async () => {
    const res = await v2('/v2/models/embedder/infer', { id: 'e1', inputs: [textInput(TEXTS)] })
    assert.equal(res.statusCode, 200, res.body)
    const [embeddings] = res.json().outputs
    assert.equal(res.json().id, 'e1')
    assert.equal(embeddings.name, 'embeddings')
    assert.equal(embeddings.datatype, 'FP32')
    const task = (await taskBody('embedder_1_0_0', TEXTS)).json()
    assert.deepEqual(embeddings.shape, [TEXTS.length, task.dimensions])
    assert.deepEqual(embeddings.data, task.embeddings.flat())
  })

  it('classifies texts sent as binary BYTES, labels back as JSON strings or binary', async () => {
    const texts = framed(TEXTS)
    const { body, headers } = binaryBody(
      {
        inputs: [
          {
            name: 'text',
            datatype: 'BYTES',
            shape: [TEXTS.length],
            parameters: { binary_data_size: texts.length },
          },
        ],
        outputs: [{ name: 'scores' }, { name: 'labels', parameters: { binary_data: true } }],
      },
      texts,
    )
    const res = await v2('/v2/models/classifier/infer', body, headers)
    assert.equal(res.statusCode, 200, res.body)
    const answer = binaryAnswer(res)
    const [scores, labels] = answer.header.outputs
    assert.deepEqual(labels, {
      name: 'labels',
      datatype: 'BYTES',
      shape: [LABELS.length],
      parameters: { binary_data_size: framed(LABELS).length },
    })
    assert.deepEqual(unframed(answer.bytes.get('labels') as Buffer), LABELS)
    assert.deepEqual(scores.shape, [TEXTS.length, LABELS.length])

    const task = (await taskBody('classifier_1_0_0', TEXTS)).json()
    task.predictions.forEach((ranked: { label: string; score: number }[], b: number) => {
      for (const { label, score } of ranked) {
        assert.equal(scores.data[b * LABELS.length + LABELS.indexOf(label)], score, label)
      }
    })

    const json = await v2('/v2/models/classifier/infer', {
      inputs: [textInput(['great movie'])],
      outputs: [{ name: 'labels' }],
    })
    assert.equal(json.statusCode, 200, json.body)
    assert.deepEqual(json.json().outputs, [
      { name: 'labels', datatype: 'BYTES', shape: [3], data: LABELS },
    ])
  })

  it("still runs a task model's graph on its own tensors", async () => {
    const ids = { datatype: 'INT64', shape: [1, 3], data: [2, 12, 3] }
    const res = await v2('/v2/models/embedder/infer', {
      inputs: [
        { name: 'input_ids', ...ids },
        { name: 'attention_mask', ...ids, data: [1, 1, 1] },
      ],
    })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.json().outputs[0].name, 'last_hidden_state')
    assert.deepEqual(res.json().outputs[0].shape, [1, 3, 8])
  })

  it('refuses hostile or wrong BYTES inputs with a 400 naming the problem', async () => {
    const binary = (shape: number[], bytes: Buffer) =>
      binaryBody(
        {
          inputs: [
            {
              name: 'text',
              datatype: 'BYTES',
              shape,
              parameters: { binary_data_size: bytes.length },
            },
          ],
        },
        bytes,
      )
    const lying = Buffer.concat([Buffer.from([100, 0, 0, 0]), Buffer.from('ab')])
    const cases: Array<[string, unknown, Record<string, string>, string]> = [
      [
        'too many texts',
        { inputs: [textInput(Array(257).fill('x'))] },
        {},
        'infer_request_invalid',
      ],
      ['no text', { inputs: [textInput([])] }, {}, 'infer_request_invalid'],
      [
        'a text too long',
        { inputs: [textInput(['x'.repeat(100_001)])] },
        {},
        'infer_request_invalid',
      ],
      [
        'a number among the strings',
        { inputs: [{ ...textInput(['a', 'b']), data: ['a', 1] }] },
        {},
        'input_data_invalid',
      ],
      [
        'fewer strings than the shape',
        { inputs: [{ ...textInput(['a']), shape: [2] }] },
        {},
        'input_data_invalid',
      ],
      [
        'a length past the end',
        binary([1], lying).body,
        binary([1], lying).headers,
        'input_data_invalid',
      ],
      [
        'a count of two billion in 8 bytes',
        binary([2 ** 31], Buffer.alloc(8)).body,
        binary([2 ** 31], Buffer.alloc(8)).headers,
        'input_data_invalid',
      ],
      [
        'bytes after the last element',
        binary([1], Buffer.concat([framed(['a']), Buffer.from([0])])).body,
        binary([1], Buffer.concat([framed(['a']), Buffer.from([0])])).headers,
        'input_data_invalid',
      ],
      [
        'texts as FP32',
        { inputs: [{ name: 'text', datatype: 'FP32', shape: [1], data: [1] }] },
        {},
        'input_datatype_mismatch',
      ],
      [
        'texts of rank 2',
        { inputs: [{ ...textInput(['a']), shape: [1, 1] }] },
        {},
        'input_shape_mismatch',
      ],
      [
        'another input name',
        { inputs: [{ ...textInput(['a']), name: 'txt' }] },
        {},
        'input_unknown',
      ],
      [
        'an output it does not have',
        { inputs: [textInput(['a'])], outputs: [{ name: 'logits' }] },
        {},
        'output_unknown',
      ],
    ]
    for (const [what, body, headers, code] of cases) {
      const res = await v2('/v2/models/embedder/infer', body, headers)
      assert.equal(res.statusCode, 400, `${what}: ${res.body}`)
      assert.equal(res.json().error.code, code, what)
    }
    const unknown = await v2('/v2/models/embedder/infer', {
      inputs: [{ ...textInput(['a']), name: 'txt' }],
    })
    assert.deepEqual(unknown.json().error.details.expected, ['text'])

    // A tensor model keeps its own datatypes: strings are not its FP32.
    const mlp = await v2('/v2/models/mlp/infer', {
      inputs: [{ name: 'x', datatype: 'BYTES', shape: [1, 4], data: ['a', 'b', 'c', 'd'] }],
    })
    assert.equal(mlp.statusCode, 400, mlp.body)
    assert.equal(mlp.json().error.code, 'input_datatype_mismatch')
  })
})
