import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { emptyBucket, hourOf, LATENCY_BUCKETS } from '../../src/domain/inference-stats.js'
import { SqliteMetadataStore } from '../../src/metadata/sqlite/sqlite-metadata-store.js'
import { mlpModel } from '../fixtures/onnx-models.js'
import { runAdminCommand } from '../helpers/admin.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, uploadAndWait } from '../helpers/uploads.js'

const ROUTE = '/v1/analytics/inference/performance'
const GOOD = {
  inputs: [{ name: 'x', shape: [1, 16], datatype: 'FP32', data: new Array(16).fill(0.5) }],
}
const BAD = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] }

interface Performance {
  model_id: string
  model_name: string
  version: string
  namespace_id: string
  window_hours: number
  requests: number
  successes: number
  errors: number
  error_rate: number
  timeouts: number
  rejected: number
  outcomes: Record<string, number>
  latency_ms: { avg: number; p50: number; p90: number; p99: number } | null
  cold_loads: number
  first_request_at: string | null
  last_request_at: string | null
  throughput_per_hour: number
}

/** Inference traffic of a namespace's models, counted and kept in the metadata store. */
describe('GET /v1/analytics/inference/performance', () => {
  let t: TestApp
  let ns: string
  let rivalKey: string
  const good = 6
  const bad = 3

  const infer = async (modelId: string, body: unknown, status: number) => {
    const res = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/${modelId}/infer`,
      key: BOOTSTRAP_KEY,
      body,
    })
    assert.equal(res.statusCode, status, res.body)
  }
  const performance = (query = '', namespace: string | null = ns, key = BOOTSTRAP_KEY) =>
    t.request({
      method: 'GET',
      url: `${ROUTE}${query}`,
      key,
      headers: namespace === null ? {} : { 'x-namespace': namespace },
    })
  const answer = async (query = '', namespace = ns): Promise<Performance[]> => {
    const res = await performance(query, namespace)
    assert.equal(res.statusCode, 200, res.body)
    return res.json()
  }

  before(async () => {
    t = await startTestApp({ BERTH_IDLE_TIMEOUT_S: '0' })
    ns = await createNamespace(t, 'analytics')
    await runAdminCommand(['org', 'create', 'rival', '--tier', 'enterprise'], t.config)
    rivalKey = String(
      (await runAdminCommand(['key', 'create', '--org', 'rival'], t.config)).api_key,
    )
    // On demand: its first request loads it (a cold load).
    const lazy = await uploadAndWait(
      t,
      ns,
      { name: 'lazy-mlp', model_format: 'onnx', memory_gb: '0.5', deploy: 'false' },
      { 'model.onnx': mlpModel() },
    )
    assert.equal(lazy.deployment_status, 'not_deployed')
    const eager = await uploadAndWait(
      t,
      ns,
      { name: 'eager-mlp', model_format: 'onnx', memory_gb: '0.5' },
      { 'model.onnx': mlpModel() },
    )
    assert.equal(eager.deployment_status, 'deployed')
    for (let i = 0; i < good; i++) await infer('lazy-mlp_1_0_0', GOOD, 200)
    for (let i = 0; i < bad; i++) await infer('lazy-mlp_1_0_0', BAD, 400)
    await infer('eager-mlp_1_0_0', GOOD, 200)
  })
  after(() => t.close())

  it("counts each model's requests, errors, latency and cold loads", async () => {
    const models = await answer()
    assert.deepEqual(
      models.map((m) => m.model_id),
      ['eager-mlp_1_0_0', 'lazy-mlp_1_0_0'],
    )
    const lazy = models[1] as Performance
    assert.equal(lazy.model_name, 'lazy-mlp')
    assert.equal(lazy.version, '1.0.0')
    assert.equal(lazy.namespace_id, ns)
    assert.equal(lazy.window_hours, 24)
    assert.equal(lazy.requests, good + bad)
    assert.equal(lazy.successes, good)
    assert.equal(lazy.errors, bad)
    assert.equal(lazy.error_rate, bad / (good + bad))
    assert.deepEqual(lazy.outcomes, {
      success: good,
      bad_request: bad,
      not_ready: 0,
      timeout: 0,
      rejected: 0,
      error: 0,
    })
    assert.equal(lazy.timeouts, 0)
    assert.equal(lazy.rejected, 0)
    assert.equal(lazy.cold_loads, 1)
    assert.equal(lazy.throughput_per_hour, Math.round(((good + bad) / 24) * 1000) / 1000)
    const latency = lazy.latency_ms
    assert.ok(latency !== null)
    assert.ok(latency.avg > 0, `avg ${latency.avg}`)
    assert.ok(
      latency.p50 > 0 && latency.p50 <= latency.p90 && latency.p90 <= latency.p99,
      JSON.stringify(latency),
    )
    const first = Date.parse(lazy.first_request_at ?? '')
    const last = Date.parse(lazy.last_request_at ?? '')
    assert.ok(
      first <= last && last <= Date.now(),
      `${lazy.first_request_at} ${lazy.last_request_at}`,
    )

    const eager = models[0] as Performance
    assert.deepEqual(
      [eager.requests, eager.successes, eager.errors, eager.error_rate, eager.cold_loads],
      [1, 1, 0, 0, 0],
    )
  })

  it('filters by model name or model_id, and answers [] for a name that matches nothing', async () => {
    assert.deepEqual(
      (await answer('?model_name=lazy-mlp')).map((m) => m.model_id),
      ['lazy-mlp_1_0_0'],
    )
    assert.deepEqual(
      (await answer('?model_name=eager-mlp_1_0_0')).map((m) => m.model_id),
      ['eager-mlp_1_0_0'],
    )
    assert.deepEqual(await answer('?model_name=no-such-model'), [])
  })

  it('takes the namespace by name, and answers in the error envelope', async () => {
    assert.deepEqual(await answer('', 'analytics'), await answer())
    const missing = await performance('', null)
    assert.equal(missing.statusCode, 400, missing.body)
    assert.equal(missing.json().error.code, 'namespace_header_missing')
    const unknown = await performance('', 'no-such-namespace')
    assert.equal(unknown.statusCode, 404)
    assert.equal(unknown.json().error.code, 'namespace_not_found')
    for (const hours of ['0', '721', '1.5', '1e2', '0x10', '', 'many', '24&hours=48']) {
      const res = await performance(`?hours=${hours}`)
      assert.equal(res.statusCode, 422, `hours=${hours}: ${res.body}`)
      assert.equal(res.json().error.code, 'request_validation_failed')
    }
    const keyless = await t.request({ method: 'GET', url: ROUTE, headers: { 'x-namespace': ns } })
    assert.equal(keyless.statusCode, 401)
  })

  it("shows another organization nothing of this one's traffic", async () => {
    for (const ref of [ns, 'analytics']) {
      const res = await performance('', ref, rivalKey)
      assert.equal(res.statusCode, 404, res.body)
      assert.equal(res.json().error.code, 'namespace_not_found')
    }
    const own = await t.request({
      method: 'POST',
      url: '/v1/namespaces',
      key: rivalKey,
      body: { namespace_name: 'analytics' },
    })
    assert.equal(own.statusCode, 200, own.body)
    const res = await performance('', 'analytics', rivalKey)
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(res.json(), [])
  })

  it("agrees with Mixpeek's contract in /openapi.json, with an example", async () => {
    const doc = (await t.request({ method: 'GET', url: '/openapi.json' })).json()
    const op = doc.paths[ROUTE]?.get
    const params = Object.fromEntries(
      (op.parameters as Array<{ in: string; name: string; required: boolean; schema: object }>).map(
        (p) => [`${p.in}:${p.name}`, { required: p.required, ...p.schema }],
      ),
    )
    assert.deepEqual(params, {
      'query:model_name': { required: false, type: 'string', minLength: 1, maxLength: 128 },
      'query:hours': { required: false, type: 'integer', minimum: 1, maximum: 720, default: 24 },
      'header:x-namespace': { required: false, type: 'string' },
    })
    assert.deepEqual(Object.keys(op.responses).sort(), [
      '200',
      '400',
      '401',
      '403',
      '404',
      '422',
      '500',
    ])
    const response = doc.components.schemas.InferencePerformanceResponse
    assert.equal(response.type, 'array')
    assert.equal(response.items.type, 'object')
    assert.equal(response.examples?.[0]?.[0]?.model_id, 'tiny-mlp_1_0_0')
  })

  it('keeps the numbers across a restart, and windows them by hours', async () => {
    const before = await answer()
    // Counted after the last answer: written when the server stops.
    await infer('eager-mlp_1_0_0', GOOD, 200)
    await infer('eager-mlp_1_0_0', BAD, 400)
    await t.stop()

    // Traffic 30 hours ago, as another instance would have recorded it.
    const store = await SqliteMetadataStore.open({
      driver: 'sqlite',
      path: (t.config.metadata as { path: string }).path,
    })
    const model = await store.findModel(ns, 'lazy-mlp_1_0_0')
    assert.ok(model !== undefined)
    const old = emptyBucket(model, hourOf(Date.now()) - 30)
    const latencyCounts = new Array<number>(LATENCY_BUCKETS).fill(0)
    latencyCounts[LATENCY_BUCKETS - 1] = 5
    await store.addInferenceBuckets([
      {
        ...old,
        outcomes: { ...old.outcomes, success: 5, timeout: 2 },
        latencySumMs: 5 * 40_000,
        latencyCounts,
        firstRequestAt: new Date(Date.now() - 30 * 3_600_000).toISOString(),
        lastRequestAt: new Date(Date.now() - 30 * 3_600_000).toISOString(),
      },
    ])
    await store.close()

    t = await startTestApp({ BERTH_DATA_DIR: t.dataDir })
    const restarted = await answer()
    const [eager, lazy] = restarted as [Performance, Performance]
    assert.deepEqual(lazy, before[1])
    assert.equal(eager.requests, 3)
    assert.equal(eager.successes, 2)
    assert.equal(eager.errors, 1)

    const wide = (await answer('?hours=48&model_name=lazy-mlp'))[0] as Performance
    assert.equal(wide.window_hours, 48)
    assert.equal(wide.requests, good + bad + 7)
    assert.equal(wide.successes, good + 5)
    assert.equal(wide.timeouts, 2)
    assert.equal(
      wide.first_request_at,
      new Date(Date.parse(wide.first_request_at ?? '')).toISOString(),
    )
    assert.ok(Date.parse(wide.first_request_at ?? '') < Date.parse(lazy.first_request_at ?? ''))
    // The slow old requests move the high percentiles, not the count of the recent ones.
    assert.ok((wide.latency_ms?.p99 ?? 0) > (lazy.latency_ms?.p99 ?? 0))
  })
})
