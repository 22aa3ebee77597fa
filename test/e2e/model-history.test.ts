import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { HistoryPoint } from '../../src/observability/model-history.js'
import { mlpModel } from '../fixtures/onnx-models.js'
import { runAdminCommand } from '../helpers/admin.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, uploadAndWait } from '../helpers/uploads.js'

const GOOD = {
  inputs: [{ name: 'x', shape: [1, 16], datatype: 'FP32', data: new Array(16).fill(0.5) }],
}
const BAD = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] }
const MODEL = 'lazy-mlp_1_0_0'

type Point = HistoryPoint
interface History {
  model_id: string
  namespace_id: string
  step_seconds: number
  points: Point[]
}

/** A model's last hour, per minute, kept in memory by the server that served it. */
describe('GET /v1/namespaces/{namespace_id}/models/{model_id}/history', () => {
  let t: TestApp
  let ns: string
  let rivalKey: string
  /** The minute the requests were made in (all of them: see `before`). */
  let requestsMinute: number
  const good = 5

  const history = (namespace: string, model: string, key = BOOTSTRAP_KEY) =>
    t.request({ method: 'GET', url: `/v1/namespaces/${namespace}/models/${model}/history`, key })
  const infer = async (body: unknown, status: number) => {
    const res = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/${MODEL}/infer`,
      key: BOOTSTRAP_KEY,
      body,
    })
    assert.equal(res.statusCode, status, res.body)
  }
  const upload = () =>
    uploadAndWait(
      t,
      ns,
      // On demand: its first request loads it (a cold load); never unloaded while idle.
      { name: 'lazy-mlp', model_format: 'onnx', memory_gb: '0.5', deploy: 'false' },
      { 'model.onnx': mlpModel() },
    )

  before(async () => {
    t = await startTestApp({ BERTH_IDLE_TIMEOUT_S: '0' })
    ns = await createNamespace(t, 'charts')
    await runAdminCommand(['org', 'create', 'rival', '--tier', 'enterprise'], t.config)
    rivalKey = String(
      (await runAdminCommand(['key', 'create', '--org', 'rival'], t.config)).api_key,
    )
    assert.equal((await upload()).deployment_status, 'not_deployed')
    // The requests in one minute: past its 30th second, wait for the next.
    const intoMinute = Date.now() % 60_000
    if (intoMinute > 30_000) await sleep(60_000 - intoMinute + 100)
    requestsMinute = Math.floor(Date.now() / 60_000) * 60_000
    for (let i = 0; i < good; i++) await infer(GOOD, 200)
    await infer(BAD, 400)
    assert.equal(Math.floor(Date.now() / 60_000) * 60_000, requestsMinute, 'a minute went by')
  })
  after(() => t.close())

  it("shows the requests' minute with its requests, errors, latency, cold load and memory", async () => {
    const res = await history('charts', MODEL)
    assert.equal(res.statusCode, 200, res.body)
    const body: History = res.json()
    assert.equal(body.model_id, MODEL)
    assert.equal(body.namespace_id, ns)
    assert.equal(body.step_seconds, 60)
    assert.equal(body.points.length, 60)
    const times = body.points.map((p) => Date.parse(p.time))
    for (let i = 1; i < times.length; i++) assert.equal(times[i], (times[i - 1] ?? 0) + 60_000)
    const minute = Math.floor(Date.now() / 60_000) * 60_000
    assert.equal(times.at(-1), minute)
    // The current minute, or (a slow machine) the one before it, when the read came later.
    const at = times.indexOf(requestsMinute)
    assert.ok(at >= times.length - 2, `the requests' minute is point ${at}`)
    const last = body.points[at] as Point
    assert.equal(last.requests, good + 1)
    assert.equal(last.errors, 1)
    assert.equal(last.cold_loads, 1)
    const { p50, p95, p99 } = last.latency_ms
    assert.ok(p50 !== null && p95 !== null && p99 !== null, JSON.stringify(last))
    assert.ok(p50 > 0 && p50 <= p95 && p95 <= p99, JSON.stringify(last))
    assert.equal(typeof last.resident_bytes, 'number')
    assert.ok((last.resident_bytes ?? 0) > 0)
    assert.ok(Number.isInteger(last.max_active_requests) && last.max_active_requests >= 0)
    // After it (a later read), no request; the model stays loaded, so its memory may show.
    for (const p of body.points.slice(at + 1)) {
      assert.deepEqual([p.requests, p.errors, p.cold_loads], [0, 0, 0], p.time)
    }
    // Before it, nothing happened: gaps, zeros and nulls.
    for (const p of body.points.slice(0, at)) {
      assert.deepEqual(
        [
          p.requests,
          p.errors,
          p.cold_loads,
          p.latency_ms.p50,
          p.max_active_requests,
          p.resident_bytes,
        ],
        [0, 0, 0, null, 0, null],
        p.time,
      )
    }
    // By id as by name.
    const byId: History = (await history(ns, MODEL)).json()
    const same = byId.points.find((p) => Date.parse(p.time) === requestsMinute)
    assert.equal(same?.requests, good + 1)
  })

  it('is not found for another organization, an unknown model or namespace', async () => {
    for (const namespace of [ns, 'charts']) {
      const res = await history(namespace, MODEL, rivalKey)
      assert.equal(res.statusCode, 404, res.body)
      assert.match(res.json().error.code, /^(namespace|model)_not_found$/)
      assert.ok(!res.body.includes('points'))
    }
    const unknown = await history(ns, 'nothing_1_0_0')
    assert.equal(unknown.statusCode, 404, unknown.body)
    assert.equal(unknown.json().error.code, 'model_not_found')
    const nowhere = await history('nowhere', MODEL)
    assert.equal(nowhere.json().error.code, 'namespace_not_found')
    const keyless = await t.request({
      method: 'GET',
      url: `/v1/namespaces/${ns}/models/${MODEL}/history`,
    })
    assert.equal(keyless.statusCode, 401)
  })

  it('starts afresh for a model deleted and uploaded again', async () => {
    const deleted = await t.request({
      method: 'DELETE',
      url: `/v1/namespaces/${ns}/models/${MODEL}`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(deleted.statusCode, 200, deleted.body)
    assert.equal((await history(ns, MODEL)).statusCode, 404)
    await upload()
    const res = await history(ns, MODEL)
    assert.equal(res.statusCode, 200, res.body)
    const points: Point[] = res.json().points
    assert.deepEqual(
      points.filter((p) => p.requests > 0 || p.resident_bytes !== null),
      [],
    )
  })
})
