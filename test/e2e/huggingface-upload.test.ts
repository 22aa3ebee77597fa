import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { mlpModel } from '../fixtures/onnx-models.js'
import { f32, safetensorsBytes } from '../fixtures/safetensors.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { makeEvilPickles } from '../fixtures/torch-fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'
import { startTestApp, type TestApp } from '../helpers/test-app.js'
import {
  archivePart,
  createNamespace,
  formFields,
  getModel,
  keptFiles,
  uploadModel,
} from '../helpers/uploads.js'

const CONFIG = JSON.stringify({ model_type: 'bert', architectures: ['BertModel'], hidden_size: 4 })

describe('huggingface upload', () => {
  let t: TestApp
  let ns: string
  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'hugging')
  })
  after(() => t.close())

  const upload = (name: string, files: Record<string, string | Buffer>) =>
    tarGzOf(files).then((archive) =>
      uploadModel(t, ns, [
        ...formFields({
          name,
          version: '1.0.0',
          model_format: 'huggingface',
          task_type: 'embedding',
        }),
        archivePart(archive),
      ]),
    )
  const modelOf = (modelId: string) => getModel(t, ns, modelId)

  it('describes a sentence-transformers directory with ONNX weights', async () => {
    const res = await upload('st-onnx', {
      'all-mini/config.json': CONFIG,
      'all-mini/onnx/model.onnx': mlpModel(),
      'all-mini/tokenizer.json': '{"version":"1.0"}',
      'all-mini/tokenizer_config.json': '{}',
      'all-mini/vocab.txt': '[PAD]\n[UNK]\n',
      'all-mini/modules.json': JSON.stringify([
        { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
        { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
        { idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' },
      ]),
      'all-mini/1_Pooling/config.json': JSON.stringify({
        word_embedding_dimension: 4,
        pooling_mode_mean_tokens: true,
      }),
    })
    assert.equal(res.statusCode, 200, res.body)
    const model = await modelOf('st-onnx_1_0_0')
    assert.equal(model.manifest.runtime, 'onnx')
    assert.equal(model.deployment_info.base_image, 'berth/runtime-full')
    const hf = model.manifest.huggingface
    assert.equal(hf.model_type, 'bert')
    assert.deepEqual(hf.architectures, ['BertModel'])
    assert.deepEqual(hf.tokenizer_files, ['tokenizer.json', 'tokenizer_config.json', 'vocab.txt'])
    assert.deepEqual(hf.sentence_transformers, {
      modules: [
        'sentence_transformers.models.Transformer',
        'sentence_transformers.models.Pooling',
        'sentence_transformers.models.Normalize',
      ],
      pooling: 'mean',
      normalize: true,
    })
    assert.equal(hf.onnx.primary_file, 'onnx/model.onnx')
    assert.deepEqual(model.input_schema, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: ['batch', 16] }],
    })
  })

  it('describes a directory with safetensors weights and CLS pooling', async () => {
    const res = await upload('st-weights', {
      'config.json': CONFIG,
      'model.safetensors': safetensorsBytes({ 'embeddings.word_embeddings.weight': f32([8, 4]) }),
      'modules.json': JSON.stringify([
        { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
        { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
      ]),
      '1_Pooling/config.json': JSON.stringify({ pooling_mode_cls_token: true }),
    })
    assert.equal(res.statusCode, 200, res.body)
    const model = await modelOf('st-weights_1_0_0')
    assert.equal(model.manifest.runtime, 'weights')
    assert.equal(model.manifest.huggingface.weights.tensor_count, 1)
    assert.equal(model.manifest.huggingface.sentence_transformers.pooling, 'cls')
    assert.equal(model.manifest.huggingface.sentence_transformers.normalize, false)
  })

  it('refuses a directory without config.json or weights, or with an unsafe pickle', async () => {
    const dir = await tempDir()
    try {
      await makeEvilPickles(dir.path, join(dir.path, 'PWNED'))
      const before = await keptFiles(t.dataDir)
      const cases: Array<[Record<string, string | Buffer>, string]> = [
        [{ 'onnx/model.onnx': mlpModel() }, 'huggingface_config_invalid'],
        [{ 'config.json': '[1, 2]', 'model.onnx': mlpModel() }, 'huggingface_config_invalid'],
        [{ 'config.json': CONFIG, 'tokenizer.json': '{}' }, 'model_format_mismatch'],
        [
          { 'config.json': CONFIG, 'model.onnx': mlpModel(), 'modules.json': '{"not":"a list"}' },
          'huggingface_config_invalid',
        ],
        [
          {
            'config.json': CONFIG,
            'model.safetensors': safetensorsBytes({ w: f32([2]) }),
            'pytorch_model.bin': await readFile(join(dir.path, 'os_system.pt')),
          },
          'unsafe_pickle',
        ],
      ]
      for (const [files, code] of cases) {
        const res = await upload('broken', files)
        assert.equal(res.statusCode, 400, code)
        assert.equal(res.json().error.code, code)
      }
      assert.deepEqual(await keptFiles(t.dataDir), before)
    } finally {
      await dir.remove()
    }
  })
})
