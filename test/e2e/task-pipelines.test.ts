import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Tokenizer } from '@huggingface/tokenizers'
import { encoderConfig, encoderToOnnx } from '../../src/conversion/encoder-to-onnx.js'
import { openWeights } from '../../src/formats/weights-reader.js'
import { mlpModel } from '../fixtures/onnx-models.js'
import { TOKENIZER_CONFIG, tinyVocab, wordPieceTokenizer } from '../fixtures/tokenizers.js'
import { makeEncoders, torchSkipReason } from '../fixtures/torch-fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, uploadAndWait } from '../helpers/uploads.js'

const TEXTS = ['Hello world!', 'the model is serving on cpu', 'berth']

/** Task bodies: a tokenizer and a task_type turn texts into embeddings or labels. */
describe('HuggingFace task pipelines', async () => {
  const skip = await torchSkipReason()
  let t: TestApp
  let ns: string
  let fixtures: Awaited<ReturnType<typeof tempDir>>
  const vocab = tinyVocab()
  const tokenizerJson = wordPieceTokenizer(vocab)
  const tokenizer = new Tokenizer(tokenizerJson, TOKENIZER_CONFIG)

  const infer = (modelId: string, body: unknown) =>
    t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/${modelId}/infer`,
      key: BOOTSTRAP_KEY,
      body,
    })
  const upload = async (name: string, taskType: string, files: Record<string, Buffer | string>) => {
    const answer = await uploadAndWait(
      t,
      ns,
      { name, model_format: 'huggingface', task_type: taskType, memory_gb: '1' },
      files,
    )
    assert.equal(answer.deployment_status, 'deployed', JSON.stringify(answer))
  }
  const encoderFiles = async (family: string) => ({
    'config.json': await readFile(join(fixtures.path, family, 'config.json')),
    'model.safetensors': await readFile(join(fixtures.path, family, 'model.safetensors')),
    'tokenizer.json': JSON.stringify(tokenizerJson),
    'tokenizer_config.json': JSON.stringify(TOKENIZER_CONFIG),
  })
  /** The raw OIP request a batch of texts becomes: ids padded with [PAD] = 0, mask, types. */
  const rawRequest = (texts: readonly string[]) => {
    const encoded = texts.map((text) => tokenizer.encode(text).ids)
    const length = Math.max(...encoded.map((ids) => ids.length))
    const pad = (row: number[], fill: number) => [...row, ...Array(length - row.length).fill(fill)]
    return {
      length,
      body: {
        inputs: [
          ['input_ids', encoded.map((ids) => pad(ids, 0))],
          [
            'attention_mask',
            encoded.map((ids) =>
              pad(
                ids.map(() => 1),
                0,
              ),
            ),
          ],
          [
            'token_type_ids',
            encoded.map((ids) =>
              pad(
                ids.map(() => 0),
                0,
              ),
            ),
          ],
        ].map(([name, rows]) => ({
          name,
          datatype: 'INT64',
          shape: [texts.length, length],
          data: rows,
        })),
      },
      mask: encoded.map((ids) =>
        pad(
          ids.map(() => 1),
          0,
        ),
      ),
    }
  }

  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'pipelines')
    fixtures = await tempDir()
    if (skip === undefined) await makeEncoders(fixtures.path)
  })
  after(async () => {
    await t.close()
    await fixtures.remove()
  })

  it('tokenizes with the WordPiece tokenizer as BERT does', () => {
    const id = (token: string) => vocab.indexOf(token)
    assert.deepEqual(tokenizer.encode('Hello world!').ids, [
      id('[CLS]'),
      id('hello'),
      id('world'),
      id('!'),
      id('[SEP]'),
    ])
    assert.deepEqual(tokenizer.encode('models serving').ids, [
      id('[CLS]'),
      id('model'),
      id('##s'),
      id('serving'),
      id('[SEP]'),
    ])
  })

  it('embeds texts: sentence-transformers mean pooling, normalised, as the raw output pooled', {
    skip,
  }, async () => {
    await upload('tiny-embedder', 'embedding', {
      ...(await encoderFiles('bert')),
      'modules.json': JSON.stringify([
        { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
        { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
        { idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' },
      ]),
      '1_Pooling/config.json': JSON.stringify({
        word_embedding_dimension: 32,
        pooling_mode_cls_token: false,
        pooling_mode_mean_tokens: true,
        pooling_mode_max_tokens: false,
      }),
    })
    const res = await infer('tiny-embedder_1_0_0', { input: TEXTS })
    assert.equal(res.statusCode, 200, res.body)
    const { embeddings, dimensions } = res.json()
    assert.equal(dimensions, 32)
    assert.equal(embeddings.length, TEXTS.length)
    for (const row of embeddings as number[][]) {
      assert.equal(row.length, 32)
      assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-5, 'unit norm')
    }

    // The reference: the model's raw output for the same tokens, mean-pooled and normalised here.
    const raw = rawRequest(TEXTS)
    const out = await infer('tiny-embedder_1_0_0', raw.body)
    assert.equal(out.statusCode, 200, out.body)
    const hidden = out.json().outputs[0].data as number[]
    TEXTS.forEach((_, b) => {
      const sum = new Array(32).fill(0)
      let count = 0
      for (let s = 0; s < raw.length; s++) {
        if (raw.mask[b]?.[s] !== 1) continue
        count += 1
        for (let d = 0; d < 32; d++) sum[d] += hidden[(b * raw.length + s) * 32 + d] as number
      }
      const mean = sum.map((v) => v / count)
      const norm = Math.hypot(...mean)
      const want = mean.map((v) => v / norm)
      const got = embeddings[b] as number[]
      assert.ok(
        want.every((w, d) => Math.abs(w - (got[d] as number)) < 1e-5),
        `text ${b}`,
      )
    })

    // Longer than the model's 40 positions: truncated, not refused.
    const long = await infer('tiny-embedder_1_0_0', { input: ['hello world '.repeat(60)] })
    assert.equal(long.statusCode, 200, long.body)
  })

  it('serves a directory that ships ONNX weights the same way (plain mean pooling)', {
    skip,
  }, async () => {
    const root = join(fixtures.path, 'bert')
    const reader = await openWeights(root, { source: 'safetensors', files: ['model.safetensors'] })
    const graph = await encoderToOnnx(
      encoderConfig(JSON.parse(await readFile(join(root, 'config.json'), 'utf8'))),
      reader,
    )
    reader.close()
    const files = await encoderFiles('bert')
    await upload('onnx-embedder', 'embedding', {
      'config.json': files['config.json'],
      'tokenizer.json': files['tokenizer.json'],
      'tokenizer_config.json': files['tokenizer_config.json'],
      'onnx/model.onnx': graph,
    })
    const res = await infer('onnx-embedder_1_0_0', { input: TEXTS })
    assert.equal(res.statusCode, 200, res.body)
    const { embeddings } = res.json() as { embeddings: number[][] }
    const raw = rawRequest(TEXTS)
    const hidden = (await infer('onnx-embedder_1_0_0', raw.body)).json().outputs[0].data as number[]
    TEXTS.forEach((_, b) => {
      const real = raw.mask[b]?.filter((m) => m === 1).length ?? 0
      for (let d = 0; d < 32; d++) {
        let sum = 0
        for (let s = 0; s < real; s++) sum += hidden[(b * raw.length + s) * 32 + d] as number
        assert.ok(
          Math.abs(sum / real - (embeddings[b]?.[d] as number)) < 1e-5,
          `text ${b} dim ${d}`,
        )
      }
    })
  })

  it('classifies texts with the labels of id2label, scores a softmax of the logits', {
    skip,
  }, async () => {
    await upload('tiny-classifier', 'classification', await encoderFiles('bert-cls'))
    const res = await infer('tiny-classifier_1_0_0', { input: TEXTS })
    assert.equal(res.statusCode, 200, res.body)
    const { predictions } = res.json() as { predictions: { label: string; score: number }[][] }
    assert.equal(predictions.length, TEXTS.length)

    const raw = rawRequest(TEXTS)
    const out = await infer('tiny-classifier_1_0_0', { ...raw.body, outputs: [{ name: 'logits' }] })
    const logits = out.json().outputs[0].data as number[]
    const labels = ['negative', 'neutral', 'positive']
    predictions.forEach((ranked, b) => {
      assert.deepEqual(ranked.map((p) => p.label).sort(), [...labels].sort())
      const row = logits.slice(b * 3, b * 3 + 3)
      const exps = row.map((v) => Math.exp(v - Math.max(...row)))
      const total = exps.reduce((a, c) => a + c, 0)
      for (const { label, score } of ranked) {
        assert.ok(Math.abs(score - (exps[labels.indexOf(label)] as number) / total) < 1e-5)
      }
      assert.ok(ranked.every((p, i) => i === 0 || (ranked[i - 1]?.score ?? 0) >= p.score))
    })
  })

  it('answers 400 to a text body for a model without a tokenizer or a task', async () => {
    await uploadAndWait(
      t,
      ns,
      { name: 'plain', model_format: 'onnx' },
      { 'model.onnx': mlpModel() },
    )
    const refused = await infer('plain_1_0_0', { input: ['hello'] })
    assert.equal(refused.statusCode, 400)
    assert.equal(refused.json().error.code, 'task_not_supported')
    if (skip !== undefined) return
    for (const input of [[], 'hello', [1, 2], Array(257).fill('x')]) {
      const bad = await infer('tiny-embedder_1_0_0', { input })
      assert.equal(bad.statusCode, 400, JSON.stringify(input).slice(0, 40))
      assert.equal(bad.json().error.code, 'infer_request_invalid')
    }
  })
})
