import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { mlpModel } from '../fixtures/onnx-models.js'
import { safetensorsBytes, type TensorInput } from '../fixtures/safetensors.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { makeTorchFixtures, torchSkipReason } from '../fixtures/torch-fixtures.js'
import { runAdminCommand } from '../helpers/admin.js'
import { tempDir } from '../helpers/temp-dir.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { archivePart, createNamespace, formFields, uploadModel } from '../helpers/uploads.js'

/** `GET …/tensors[/{name}]`: the weights inventory and raw tensor bytes. */
describe('weights inventory over HTTP', async () => {
  const skip = await torchSkipReason()
  let t: TestApp
  let ns: string
  let fixtures: Awaited<ReturnType<typeof tempDir>>
  const tensorsOf = {
    'bert.embeddings.word_embeddings.weight': {
      dtype: 'F32',
      shape: [3, 2],
      data: Buffer.from(Float32Array.from([1, 2, 3, 4, 5, 6]).buffer),
    },
    'bert.pooler/odd name': { dtype: 'I8', shape: [2], data: Buffer.from([0xff, 0x01]) },
  } satisfies Record<string, TensorInput>

  const upload = async (name: string, format: string, files: Record<string, Buffer | string>) => {
    const res = await uploadModel(t, ns, [
      ...formFields({ name, version: '1.0.0', model_format: format, deploy: 'false' }),
      archivePart(await tarGzOf(files)),
    ])
    assert.equal(res.statusCode, 200, res.body)
  }
  const get = (path: string, key = BOOTSTRAP_KEY) =>
    t.request({ method: 'GET', url: `/v1/namespaces/${ns}/models/${path}`, key })

  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'inventory')
    fixtures = await tempDir()
    if (skip === undefined) await makeTorchFixtures(fixtures.path)
    await upload('st-model', 'safetensors', { 'model.safetensors': safetensorsBytes(tensorsOf) })
    await upload('graph', 'onnx', { 'model.onnx': mlpModel() })
  })
  after(async () => {
    await t.close()
    await fixtures.remove()
  })

  it('lists a safetensors model and serves each tensor byte for byte', async () => {
    const list = await get('st-model_1_0_0/tensors')
    assert.equal(list.statusCode, 200, list.body)
    assert.deepEqual(list.json(), {
      success: true,
      model_id: 'st-model_1_0_0',
      tensor_count: 2,
      parameter_count: 8,
      tensors: Object.entries(tensorsOf).map(([name, t]) => ({
        name,
        dtype: t.dtype,
        shape: t.shape,
      })),
    })
    for (const [name, tensor] of Object.entries(tensorsOf)) {
      const res = await get(`st-model_1_0_0/tensors/${encodeURIComponent(name)}`)
      assert.equal(res.statusCode, 200, name)
      assert.equal(res.headers['content-type'], 'application/octet-stream')
      assert.equal(res.headers['x-tensor-dtype'], tensor.dtype)
      assert.equal(res.headers['x-tensor-shape'], JSON.stringify(tensor.shape))
      assert.deepEqual(res.rawPayload, tensor.data, name)
    }
  })

  it('serves a state_dict exactly as t.contiguous() holds it', { skip }, async () => {
    await upload('pt-model', 'pytorch', {
      'mixed_dtypes.pt': await readFile(join(fixtures.path, 'mixed_dtypes.pt')),
    })
    const expected = JSON.parse(
      await readFile(join(fixtures.path, 'mixed_dtypes.expected.json'), 'utf8'),
    ) as Record<string, { dtype: string; shape: number[]; hex: string }>
    const list = (await get('pt-model_1_0_0/tensors')).json()
    assert.deepEqual(
      list.tensors,
      Object.entries(expected).map(([name, e]) => ({ name, dtype: e.dtype, shape: e.shape })),
    )
    for (const [name, e] of Object.entries(expected)) {
      const res = await get(`pt-model_1_0_0/tensors/${encodeURIComponent(name)}`)
      assert.equal(res.statusCode, 200, name)
      assert.equal(res.rawPayload.toString('hex'), e.hex, name)
    }
  })

  it('answers 404 for an unknown tensor, 400 for a graph, and nothing to other orgs', async () => {
    const missing = await get('st-model_1_0_0/tensors/nope')
    assert.equal(missing.statusCode, 404)
    assert.equal(missing.json().error.code, 'tensor_not_found')
    const graph = await get('graph_1_0_0/tensors')
    assert.equal(graph.statusCode, 400)
    assert.equal(graph.json().error.code, 'model_has_no_tensors')

    await runAdminCommand(['org', 'create', 'peeker', '--tier', 'enterprise'], t.config)
    const key = String(
      (await runAdminCommand(['key', 'create', '--org', 'peeker'], t.config)).api_key,
    )
    const foreign = await get('st-model_1_0_0/tensors', key)
    assert.equal(foreign.statusCode, 404)
    assert.equal(foreign.json().error.code, 'namespace_not_found')
  })
})
