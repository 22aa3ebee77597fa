import assert from 'node:assert/strict'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { f32, safetensorsBytes } from '../fixtures/safetensors.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { makeEvilPickles, makeTorchFixtures, torchSkipReason } from '../fixtures/torch-fixtures.js'
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
  const manifestOf = (modelId: string) => getModel(t, ns, modelId)

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

describe('pytorch upload', async () => {
  const skip = await torchSkipReason()
  let t: TestApp
  let ns: string
  let fixtures: Awaited<ReturnType<typeof tempDir>>
  let marker: string
  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'torch')
    fixtures = await tempDir()
    marker = join(fixtures.path, 'PWNED')
    await makeEvilPickles(fixtures.path, marker)
    if (skip === undefined) await makeTorchFixtures(fixtures.path)
  })
  after(async () => {
    await t.close()
    await fixtures.remove()
  })

  const upload = async (name: string, files: Record<string, string>) => {
    const contents: Record<string, Buffer> = {}
    for (const [path, fixture] of Object.entries(files))
      contents[path] = await readFile(join(fixtures.path, fixture))
    return uploadModel(t, ns, [
      ...formFields({ name, version: '1.0.0', model_format: 'pytorch' }),
      archivePart(await tarGzOf(contents)),
    ])
  }
  const modelOf = (modelId: string) => getModel(t, ns, modelId)

  it('refuses a pickle calling os.system, keeping nothing and running nothing', async () => {
    const before = await keptFiles(t.dataDir)
    for (const fixture of ['os_system.pt', 'legacy_os_system.pt', 'builtins_eval.pt']) {
      const res = await upload('evil', { 'pytorch_model.bin': fixture })
      assert.equal(res.statusCode, 400, fixture)
      assert.equal(res.json().error.code, 'unsafe_pickle', fixture)
    }
    assert.deepEqual(await keptFiles(t.dataDir), before)
    await assert.rejects(stat(marker), { code: 'ENOENT' })
  })

  it('accepts a state_dict as weights and TorchScript for the torch runner', { skip }, async () => {
    const weights = await upload('mlp-weights', { 'mlp/pytorch_model.bin': 'mlp_state_dict.pt' })
    assert.equal(weights.statusCode, 200, weights.body)
    const model = await modelOf('mlp-weights_1_0_0')
    assert.equal(model.manifest.runtime, 'weights')
    assert.equal(model.manifest.weights.source, 'pytorch')
    assert.equal(model.manifest.weights.parameter_count, 16 * 32 + 32 + 32 * 4 + 4)

    const script = await upload('mlp-script', { 'model.pt': 'mlp_scripted.pt' })
    assert.equal(script.statusCode, 200, script.body)
    const scripted = await modelOf('mlp-script_1_0_0')
    assert.equal(scripted.manifest.runtime, 'torch')
    assert.deepEqual(scripted.manifest.torchscript, { file: 'model.pt' })
    assert.equal(scripted.deployment_info.base_image, 'berth/runtime-full')

    const module = await upload('mlp-module', { 'model.pt': 'mlp_full_module.pt' })
    assert.equal(module.statusCode, 400)
    assert.equal(module.json().error.code, 'unsafe_pickle')
    assert.equal(module.json().error.details.global, '__main__.MLP')
  })
})
