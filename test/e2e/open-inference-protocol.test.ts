import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { mlpModel, multiModel, referenceMlp } from '../fixtures/onnx-models.js'
import { runAdminCommand } from '../helpers/admin.js'
import { eventually } from '../helpers/processes.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, getModel, uploadAndWait } from '../helpers/uploads.js'

async function upload(
  t: TestApp,
  ns: string,
  name: string,
  version: string,
  model: Buffer,
  deploy = true,
) {
  return uploadAndWait(
    t,
    ns,
    // Eager: without a deploy it is registered only, not served on demand.
    {
      name,
      version,
      model_format: 'onnx',
      memory_gb: '0.5',
      deploy: String(deploy),
      load_policy: 'eager',
    },
    { 'model.onnx': model },
  )
}

const X = [1, 0.5, -0.25, 2]

/** The KServe v2 data plane, namespace from X-Namespace. */
describe('Open Inference Protocol (/v2)', () => {
  let t: TestApp
  let ns: string
  const v2 = (
    method: 'GET' | 'POST',
    url: string,
    options: { body?: unknown; namespace?: string | null; key?: string } = {},
  ) =>
    t.request({
      method,
      url,
      key: options.key ?? BOOTSTRAP_KEY,
      body: options.body,
      headers: options.namespace === null ? {} : { 'x-namespace': options.namespace ?? 'oip' },
    })
  const request = { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: X }] }

  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'oip')
    // Two deployed versions with different weights, and a higher one that is not deployed.
    await upload(t, ns, 'scorer', '1.0.0', mlpModel(4, 8, 3, 1))
    await upload(t, ns, 'scorer', '1.2.0', mlpModel(4, 8, 3, 2))
    await upload(t, ns, 'scorer', '1.10.0', mlpModel(4, 8, 3, 3), false)
    await upload(t, ns, 'multi', '1.0.0', multiModel())
  })
  after(() => t.close())

  it('answers health without a key, server metadata with one', async () => {
    for (const path of ['/v2/health/live', '/v2/health/ready']) {
      const res = await t.request({ method: 'GET', url: path })
      assert.equal(res.statusCode, 200, path)
    }
    assert.equal((await t.request({ method: 'GET', url: '/v2' })).statusCode, 401)
    const meta = await v2('GET', '/v2')
    assert.equal(meta.statusCode, 200)
    assert.equal(meta.json().name, 'berth')
    assert.ok(meta.json().extensions.includes('binary_tensor_data'))
  })

  it('describes a model with -1 for dynamic dims and [] for scalars', async () => {
    const res = await v2('GET', '/v2/models/multi')
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(res.json(), {
      name: 'multi',
      versions: ['1.0.0'],
      platform: 'onnxruntime_onnx',
      model_id: 'multi_1_0_0',
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [-1, 4] },
        { name: 'k', datatype: 'INT64', shape: [] },
        { name: 'm', datatype: 'FP32', shape: [2, 3] },
      ],
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [-1, 4] },
        { name: 'k1', datatype: 'INT64', shape: [] },
        { name: 'm2', datatype: 'FP32', shape: [2, 3] },
      ],
    })
  })

  it('resolves a name to its highest deployed version, a version path, or a model_id', async () => {
    const meta = await v2('GET', '/v2/models/scorer')
    assert.deepEqual(meta.json().versions, ['1.10.0', '1.2.0', '1.0.0'])
    assert.equal(meta.json().model_id, 'scorer_1_2_0')

    const byName = await v2('POST', '/v2/models/scorer/infer', { body: request })
    assert.equal(byName.statusCode, 200, byName.body)
    assert.equal(byName.json().model_version, '1.2.0')
    const want = (seed: number) => referenceMlp(X, 1, 4, 8, 3, seed)
    const close = (got: number[], exp: number[]) =>
      got.every((v, i) => Math.abs(v - (exp[i] as number)) < 1e-5)
    assert.ok(close(byName.json().outputs[0].data, want(2)))

    const byVersion = await v2('POST', '/v2/models/scorer/versions/1.0.0/infer', { body: request })
    assert.equal(byVersion.json().model_version, '1.0.0')
    assert.ok(close(byVersion.json().outputs[0].data, want(1)))

    const byId = await v2('POST', '/v2/models/scorer_1_0_0/infer', { body: request })
    assert.equal(byId.json().model_version, '1.0.0')

    const ready = await v2('GET', '/v2/models/scorer/versions/1.2.0/ready')
    assert.equal(ready.statusCode, 200)
    assert.deepEqual(ready.json(), { name: 'scorer', ready: true })
    const notReady = await v2('GET', '/v2/models/scorer/versions/1.10.0/ready')
    assert.equal(notReady.statusCode, 503)
    assert.equal(notReady.json().error.code, 'model_not_ready')
    assert.equal(notReady.json().error.details.reason, 'never_deployed')
    const notServed = await v2('POST', '/v2/models/scorer/versions/1.10.0/infer', { body: request })
    assert.equal(notServed.statusCode, 503)

    for (const path of ['/v2/models/nothing', '/v2/models/scorer/versions/9.9.9']) {
      const res = await v2('GET', path)
      assert.equal(res.statusCode, 404, path)
      assert.equal(res.json().error.code, 'model_not_found')
    }
  })

  it('needs X-Namespace, and never reveals another organization', async () => {
    const missing = await v2('GET', '/v2/models/scorer', { namespace: null })
    assert.equal(missing.statusCode, 400)
    assert.equal(missing.json().error.code, 'namespace_header_missing')

    await runAdminCommand(['org', 'create', 'outsider', '--tier', 'enterprise'], t.config)
    const key = String(
      (await runAdminCommand(['key', 'create', '--org', 'outsider'], t.config)).api_key,
    )
    for (const namespace of ['oip', ns]) {
      const res = await v2('POST', '/v2/models/scorer/infer', { body: request, namespace, key })
      assert.equal(res.statusCode, 404)
      assert.equal(res.json().error.code, 'namespace_not_found')
    }
    // Nor through the model's endpoint, by namespace id, while the model is being served.
    const endpoint = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/scorer_1_2_0/infer`,
      key,
      body: request,
    })
    assert.equal(endpoint.statusCode, 404)
    assert.equal(endpoint.json().error.code, 'namespace_not_found')
  })
})

describe('restart reconciliation', () => {
  it('serves what was deployed again after a restart, and not what was undeployed', async () => {
    const first = await startTestApp()
    const ns = await createNamespace(first, 'durable')
    await upload(first, ns, 'kept', '1.0.0', mlpModel())
    await upload(first, ns, 'parked', '1.0.0', mlpModel())
    const undeploy = await first.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/parked_1_0_0/undeploy`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(undeploy.statusCode, 200)
    await first.stop()

    const second = await startTestApp({ BERTH_DATA_DIR: first.dataDir })
    try {
      const body = {
        inputs: [{ name: 'x', shape: [1, 16], datatype: 'FP32', data: new Array(16).fill(1) }],
      }
      const infer = (id: string) =>
        second.request({
          method: 'POST',
          url: `/v1/namespaces/${ns}/models/${id}/infer`,
          key: BOOTSTRAP_KEY,
          body,
        })
      // Nobody asks: the server brings it back by itself.
      await eventually(async () => (await getModel(second, ns, 'kept_1_0_0')).deployed)
      assert.equal((await infer('kept_1_0_0')).statusCode, 200)
      const parked = await infer('parked_1_0_0')
      assert.equal(parked.statusCode, 503)
      assert.equal(parked.json().error.details.state, 'not_deployed')
    } finally {
      await second.close()
    }
  })
})
