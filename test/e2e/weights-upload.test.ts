import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { f32, safetensorsBytes } from '../fixtures/safetensors.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import {
  archivePart,
  createNamespace,
  formFields,
  keptFiles,
  uploadModel,
} from '../helpers/uploads.js'

describe('safetensors upload', () => {
  let t: TestApp
  let ns: string
  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'weights')
  })
  after(() => t.close())

  const upload = (name: string, archive: Buffer, format = 'safetensors') =>
    uploadModel(t, ns, [
      ...formFields({ name, version: '1.0.0', model_format: format }),
      archivePart(archive),
    ])
  const manifestOf = async (modelId: string) =>
    (
      await t.request({
        method: 'GET',
        url: `/v1/namespaces/${ns}/models/${modelId}`,
        key: BOOTSTRAP_KEY,
      })
    ).json().model

  it('describes a single file: tensors, parameters, dtypes, config architecture', async () => {
    const archive = await tarGzOf({
      'bert-tiny/model.safetensors': safetensorsBytes({
        'embeddings.weight': f32([10, 4]),
        'embeddings.bias': { dtype: 'F16', shape: [4], data: Buffer.alloc(8) },
      }),
      'bert-tiny/config.json': JSON.stringify({ model_type: 'bert', architectures: ['BertModel'] }),
    })
    const res = await upload('single', archive)
    assert.equal(res.statusCode, 200, res.body)
    const model = await manifestOf('single_1_0_0')
    assert.equal(model.deployment_info.base_image, 'berth/runtime-full')
    assert.equal(model.manifest.runtime, 'weights')
    assert.deepEqual(model.manifest.weights, {
      source: 'safetensors',
      weight_files: ['model.safetensors'],
      tensor_count: 2,
      parameter_count: 44,
      dtypes: { F32: 1, F16: 1 },
      architecture: 'bert',
    })
    assert.equal(model.input_schema, null)
  })

  it('checks a sharded checkpoint against its index', async () => {
    const shard1 = safetensorsBytes({ a: f32([2, 2]) })
    const shard2 = safetensorsBytes({ b: f32([3]), c: f32([1]) })
    const index = (map: Record<string, string>) =>
      JSON.stringify({ metadata: { total_size: 32 }, weight_map: map })
    const good = await tarGzOf({
      'model-00001-of-00002.safetensors': shard1,
      'model-00002-of-00002.safetensors': shard2,
      'model.safetensors.index.json': index({
        a: 'model-00001-of-00002.safetensors',
        b: 'model-00002-of-00002.safetensors',
        c: 'model-00002-of-00002.safetensors',
      }),
    })
    const ok = await upload('sharded', good)
    assert.equal(ok.statusCode, 200, ok.body)
    assert.equal((await manifestOf('sharded_1_0_0')).manifest.weights.tensor_count, 3)

    const before = await keptFiles(t.dataDir)
    for (const map of [
      { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' },
      {
        a: 'model-00002-of-00002.safetensors',
        b: 'model-00002-of-00002.safetensors',
        c: 'model-00002-of-00002.safetensors',
      },
      {
        a: 'model-00001-of-00002.safetensors',
        b: 'model-00003-of-00002.safetensors',
        c: 'model-00002-of-00002.safetensors',
      },
    ]) {
      const res = await upload(
        'bad-index',
        await tarGzOf({
          'model-00001-of-00002.safetensors': shard1,
          'model-00002-of-00002.safetensors': shard2,
          'model.safetensors.index.json': index(map),
        }),
      )
      assert.equal(res.statusCode, 400, JSON.stringify(map))
      assert.equal(res.json().error.code, 'safetensors_index_invalid')
    }
    assert.deepEqual(await keptFiles(t.dataDir), before)
  })

  it('refuses lying headers, missing weights and bad config.json with 400, keeping nothing', async () => {
    const before = await keptFiles(t.dataDir)
    const cases: Array<[Buffer, string]> = [
      [
        await tarGzOf({
          'model.safetensors': safetensorsBytes({
            w: { dtype: 'F32', shape: [100], data: Buffer.alloc(8) },
          }),
        }),
        'safetensors_invalid',
      ],
      [
        await tarGzOf({
          'model.safetensors': safetensorsBytes({ w: f32([2]) }, { trailing: Buffer.alloc(4) }),
        }),
        'safetensors_invalid',
      ],
      [
        await tarGzOf({ 'weights.bin': Buffer.alloc(16), 'config.json': '{}' }),
        'model_format_mismatch',
      ],
      [
        await tarGzOf({
          'model.safetensors': safetensorsBytes({ w: f32([2]) }),
          'config.json': '{not json',
        }),
        'huggingface_config_invalid',
      ],
    ]
    for (const [archive, code] of cases) {
      const res = await upload('liar', archive)
      assert.equal(res.statusCode, 400, code)
      assert.equal(res.json().error.code, code)
    }
    assert.deepEqual(await keptFiles(t.dataDir), before)
  })
})
