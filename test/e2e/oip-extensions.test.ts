import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { mlpModel, multiModel } from '../fixtures/onnx-models.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, uploadAndWait } from '../helpers/uploads.js'

const ZERO = { count: 0, ns: 0 }

/**
 * Triton's HTTP extensions as its documentation and clients use them (model configuration,
 * statistics, model repository), on models of the namespace given in X-Namespace.
 */
describe('Open Inference Protocol extensions (Triton HTTP)', () => {
  let t: TestApp
  let ns: string
  const v2 = (
    method: 'GET' | 'POST',
    url: string,
    options: { body?: unknown; namespace?: string | null; headers?: Record<string, string> } = {},
  ) =>
    t.request({
      method,
      url,
      key: BOOTSTRAP_KEY,
      body: options.body,
      headers: {
        ...(options.namespace === null ? {} : { 'x-namespace': options.namespace ?? 'triton' }),
        ...options.headers,
      },
    })
  const rows = (n: number) => ({
    inputs: [{ name: 'x', datatype: 'FP32', shape: [n, 4], data: Array(n * 4).fill(0.5) }],
  })

  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'triton')
    const onnx = { model_format: 'onnx', memory_gb: '0.5', load_policy: 'eager' }
    await uploadAndWait(
      t,
      ns,
      {
        ...onnx,
        name: 'scorer',
        version: '1.0.0',
        deploy: 'true',
        max_batch_size: '8',
        max_queue_delay_us: '500',
      },
      { 'model.onnx': mlpModel(4, 8, 3, 1) },
    )
    await uploadAndWait(
      t,
      ns,
      { ...onnx, name: 'scorer', version: '2.0.0', deploy: 'false' },
      { 'model.onnx': mlpModel(4, 8, 3, 2) },
    )
    await uploadAndWait(
      t,
      ns,
      { ...onnx, name: 'multi', deploy: 'true' },
      { 'model.onnx': multiModel() },
    )
  })
  after(() => t.close())

  it('lists the extensions it implements in the server metadata', async () => {
    const res = await v2('GET', '/v2')
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json().extensions, [
      'binary_tensor_data',
      'model_configuration',
      'statistics',
      'model_repository',
    ])
  })

  it("answers Triton's model configuration from the signature and serving settings", async () => {
    const scorer = await v2('GET', '/v2/models/scorer/config')
    assert.equal(scorer.statusCode, 200, scorer.body)
    assert.deepEqual(scorer.json(), {
      name: 'scorer',
      platform: 'onnxruntime_onnx',
      backend: 'onnxruntime',
      max_batch_size: 8,
      input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [4] }],
      output: [{ name: 'y', data_type: 'TYPE_FP32', dims: [3] }],
      instance_group: [{ name: 'scorer', kind: 'KIND_CPU', count: 1 }],
      dynamic_batching: { max_queue_delay_microseconds: 500 },
    })
    // Not deployed, no settings of its own: the server's default batch.
    const second = await v2('GET', '/v2/models/scorer/versions/2.0.0/config')
    assert.equal(second.json().max_batch_size, 32)
    assert.deepEqual(second.json().dynamic_batching, { max_queue_delay_microseconds: 0 })

    // A fixed first dimension and a scalar: not batched, every dim shown.
    const multi = await v2('GET', '/v2/models/multi_1_0_0/config')
    assert.equal(multi.statusCode, 200, multi.body)
    assert.equal(multi.json().max_batch_size, 0)
    assert.equal(multi.json().dynamic_batching, undefined)
    assert.deepEqual(multi.json().input, [
      { name: 'x', data_type: 'TYPE_FP32', dims: [-1, 4] },
      { name: 'k', data_type: 'TYPE_INT64', dims: [] },
      { name: 'm', data_type: 'TYPE_FP32', dims: [2, 3] },
    ])

    const missing = await v2('GET', '/v2/models/nothing/config')
    assert.equal(missing.statusCode, 404)
    assert.equal(missing.json().error.code, 'model_not_found')
    const noHeader = await v2('GET', '/v2/models/scorer/config', { namespace: null })
    assert.equal(noHeader.statusCode, 400)
    assert.equal(noHeader.json().error.code, 'namespace_header_missing')
  })

  it('counts requests, queue and compute time, executions and batch sizes per model', async () => {
    const stats = async (url: string) => {
      const res = await v2('GET', url)
      assert.equal(res.statusCode, 200, res.body)
      return res.json().model_stats
    }
    const [fresh] = await stats('/v2/models/scorer/versions/1.0.0/stats')
    assert.deepEqual(fresh, {
      name: 'scorer',
      version: '1.0.0',
      last_inference: 0,
      inference_count: 0,
      execution_count: 0,
      inference_stats: {
        success: ZERO,
        fail: ZERO,
        queue: ZERO,
        compute_input: ZERO,
        compute_infer: ZERO,
        compute_output: ZERO,
        cache_hit: ZERO,
        cache_miss: ZERO,
      },
      batch_stats: [],
    })

    const before = Date.now()
    for (const body of [rows(1), rows(2)]) {
      const res = await v2('POST', '/v2/models/scorer/infer', { body })
      assert.equal(res.statusCode, 200, res.body)
    }
    const bad = await v2('POST', '/v2/models/scorer/infer', {
      body: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] },
    })
    assert.equal(bad.statusCode, 400)

    const [model] = await stats('/v2/models/scorer/versions/1.0.0/stats')
    const s = model.inference_stats
    assert.ok(model.last_inference >= before && model.last_inference <= Date.now())
    // Rows, as Triton counts a batched model's inferences; one runner call per request.
    assert.equal(model.inference_count, 3)
    assert.equal(model.execution_count, 2)
    assert.equal(s.success.count, 2)
    assert.equal(s.fail.count, 1)
    assert.ok(s.fail.ns > 0)
    assert.equal(s.queue.count, 2)
    assert.equal(s.compute_infer.count, 2)
    assert.ok(s.compute_infer.ns > 0)
    assert.ok(s.success.ns > s.compute_infer.ns, 'a request takes longer than its runner call')
    assert.deepEqual(s.compute_input, { count: 2, ns: 0 })
    assert.deepEqual(s.compute_output, { count: 2, ns: 0 })
    assert.deepEqual(
      model.batch_stats.map((b: { batch_size: number; compute_infer: { count: number } }) => [
        b.batch_size,
        b.compute_infer.count,
      ]),
      [
        [1, 1],
        [2, 1],
      ],
    )
    const computeNs = model.batch_stats.reduce(
      (n: number, b: { compute_infer: { ns: number } }) => n + b.compute_infer.ns,
      0,
    )
    assert.ok(computeNs > 0 && computeNs <= s.compute_infer.ns)

    // A name: every version of it, highest first; no name: every model of the namespace.
    const byName = await stats('/v2/models/scorer/stats')
    assert.deepEqual(
      byName.map((m: { version: string; inference_count: number }) => [
        m.version,
        m.inference_count,
      ]),
      [
        ['2.0.0', 0],
        ['1.0.0', 3],
      ],
    )
    const all = await stats('/v2/models/stats')
    assert.deepEqual(
      all.map((m: { name: string; version: string }) => `${m.name}@${m.version}`),
      ['scorer@1.0.0', 'scorer@2.0.0', 'multi@1.0.0'],
    )
    assert.equal((await v2('GET', '/v2/models/nothing/stats')).statusCode, 404)
  })

  it('indexes the repository, loads (deploys) and unloads (undeploys) models', async () => {
    const index = async (body?: unknown) => {
      const res = await v2('POST', '/v2/repository/index', body === undefined ? {} : { body })
      assert.equal(res.statusCode, 200, res.body)
      return res.json()
    }
    assert.deepEqual(await index(), [
      { name: 'multi', version: '1.0.0', state: 'READY', reason: '' },
      { name: 'scorer', version: '1.0.0', state: 'READY', reason: '' },
      { name: 'scorer', version: '2.0.0', state: 'UNAVAILABLE', reason: 'never_deployed' },
    ])
    assert.deepEqual(
      (await index({ ready: true })).map((e: { version: string }) => e.version),
      ['1.0.0', '1.0.0'],
    )
    // tritonclient sends its JSON without a Content-Type.
    assert.deepEqual(await index('{"ready": true}'), await index({ ready: true }))

    // By model_id, as tritonclient's load_model sends it: `{}`, no Content-Type.
    const load = await v2('POST', '/v2/repository/models/scorer_2_0_0/load', { body: '{}' })
    assert.equal(load.statusCode, 200, load.body)
    assert.deepEqual(load.json(), {
      models: [{ name: 'scorer', version: '2.0.0', state: 'READY', reason: '' }],
    })
    const served = await v2('POST', '/v2/models/scorer/versions/2.0.0/infer', { body: rows(1) })
    assert.equal(served.statusCode, 200, served.body)

    // A name unloads every version of it.
    const unload = await v2('POST', '/v2/repository/models/scorer/unload', {
      body: { parameters: { unload_dependents: false } },
    })
    assert.equal(unload.statusCode, 200, unload.body)
    assert.deepEqual(
      unload.json().models.map((e: { version: string; state: string }) => [e.version, e.state]),
      [
        ['2.0.0', 'UNAVAILABLE'],
        ['1.0.0', 'UNAVAILABLE'],
      ],
    )
    const after = await index()
    assert.deepEqual(
      after
        .filter((e: { name: string }) => e.name === 'scorer')
        .map((e: { reason: string }) => e.reason),
      ['undeployed', 'undeployed'],
    )
    const notReady = await v2('GET', '/v2/models/scorer/versions/1.0.0/ready')
    assert.equal(notReady.statusCode, 503)

    // A name loads its highest version.
    const byName = await v2('POST', '/v2/repository/models/scorer/load')
    assert.equal(byName.statusCode, 200, byName.body)
    assert.equal(byName.json().models[0].version, '2.0.0')

    const refusals: Array<[string, unknown, number, string]> = [
      ['/v2/repository/models/nothing/load', {}, 404, 'model_not_found'],
      ['/v2/repository/models/nothing/unload', {}, 404, 'model_not_found'],
      [
        '/v2/repository/models/scorer/load',
        { parameters: { config: '{"max_batch_size": 4}' } },
        422,
        'request_validation_failed',
      ],
    ]
    for (const [url, body, status, code] of refusals) {
      const res = await v2('POST', url, { body })
      assert.equal(res.statusCode, status, `${url}: ${res.body}`)
      assert.equal(res.json().error.code, code, url)
    }
    const elsewhere = await v2('POST', '/v2/repository/index', { namespace: 'nowhere' })
    assert.equal(elsewhere.statusCode, 404)
    assert.equal(elsewhere.json().error.code, 'namespace_not_found')
  })

  it('answers a load that fails with 400 model_load_failed, its reason in the index', async () => {
    await uploadAndWait(
      t,
      ns,
      // More memory than any node here has: its deployment fails at once (never_fits).
      { name: 'giant', model_format: 'onnx', memory_gb: '4096', deploy: 'false' },
      { 'model.onnx': mlpModel() },
    )
    const res = await v2('POST', '/v2/repository/models/giant/load', { body: {} })
    assert.equal(res.statusCode, 400, res.body)
    assert.equal(res.json().error.code, 'model_load_failed')
    assert.equal(res.json().error.details.reason, 'never_fits')
    const [entry] = (await v2('POST', '/v2/repository/index'))
      .json()
      .filter((e: { name: string }) => e.name === 'giant')
    assert.equal(entry.state, 'UNAVAILABLE')
    assert.match(entry.reason, /^never_fits: /)
  })
})
