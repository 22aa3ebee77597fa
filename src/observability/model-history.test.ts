import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LATENCY_BUCKETS, latencyBucketOf, latencyQuantile } from '../domain/inference-stats.js'
import { Metrics } from './metrics.js'
import { type HistoryPoint, type ModelGauges, ModelHistory } from './model-history.js'

const MODEL = {
  namespaceId: 'ns_1',
  organizationId: 'org_1',
  modelId: 'mlp_1_0_0',
  name: 'mlp',
  version: '1.0.0',
}
/** Another organization's namespace, with a model of the same id. */
const NAMESAKE = { ...MODEL, namespaceId: 'ns_2', organizationId: 'org_2' }

const STEP = 60_000
/** The start of a step, 10 seconds before the test's first time. */
const T0 = Date.parse('2026-05-01T10:15:00.000Z')

function history(options: { keep?: number } = {}) {
  const clock = { now: T0 + 10_000 }
  const gauges: ModelGauges[] = []
  const h = new ModelHistory({ sample: () => gauges, now: () => clock.now }, options)
  return { h, clock, gauges }
}

// Written out here, not imported: the test's own expectation of a quiet minute.
const IDLE: Omit<HistoryPoint, 'time'> = {
  requests: 0,
  errors: 0,
  cold_loads: 0,
  latency_ms: { p50: null, p95: null, p99: null },
  max_active_requests: 0,
  resident_bytes: null,
}

describe('ModelHistory', () => {
  it('answers `keep` evenly spaced steps, oldest first, the current partial one last', () => {
    const { h, clock } = history()
    h.request(MODEL, 'success', 4)
    clock.now = T0 + 3 * STEP + 59_000
    h.request(MODEL, 'success', 4)
    const points = h.points(MODEL)
    assert.equal(points.length, 60)
    const times = points.map((p) => Date.parse(p.time))
    assert.equal(times.at(-1), T0 + 3 * STEP)
    assert.equal(times[0], T0 + 3 * STEP - 59 * STEP)
    for (let i = 1; i < times.length; i++) assert.equal(times[i], (times[i - 1] ?? 0) + STEP)
    // The steps between the two requests are gaps: zeros and nulls.
    assert.deepEqual(
      points.slice(-4).map((p) => p.requests),
      [1, 0, 0, 1],
    )
    assert.deepEqual(points.at(-2), { time: new Date(T0 + 2 * STEP).toISOString(), ...IDLE })
    assert.equal(h.stepSeconds, 60)
  })

  it('counts requests, errors, cold loads and the percentiles of the successes per step', () => {
    const { h, clock } = history()
    const latencies = [1, 2, 4, 8, 12, 20, 40, 90, 200, 1200]
    h.coldLoad(MODEL)
    for (const ms of latencies) h.request(MODEL, 'success', ms)
    h.request(MODEL, 'bad_request', 0.2)
    h.request(MODEL, 'timeout', 30_000)
    clock.now += STEP
    h.request(MODEL, 'error', 3)
    const [before, last] = h.points(MODEL).slice(-2) as [HistoryPoint, HistoryPoint]
    const counts = new Array<number>(LATENCY_BUCKETS).fill(0)
    for (const ms of latencies) counts[latencyBucketOf(ms)] = (counts[latencyBucketOf(ms)] ?? 0) + 1
    const round = (q: number) => Math.round((latencyQuantile(counts, q) ?? 0) * 1000) / 1000
    assert.deepEqual(before, {
      time: new Date(T0).toISOString(),
      requests: 12,
      errors: 2,
      cold_loads: 1,
      latency_ms: { p50: round(0.5), p95: round(0.95), p99: round(0.99) },
      max_active_requests: 0,
      resident_bytes: null,
    })
    // Percentiles of the fixed buckets: p50 in (10, 15] ms, the tail in 1–2.5 s.
    assert.ok(before.latency_ms.p50 !== null && before.latency_ms.p50 > 10)
    assert.ok(before.latency_ms.p50 <= 15)
    assert.ok((before.latency_ms.p99 ?? 0) > 1000 && (before.latency_ms.p99 ?? 0) <= 2500)
    // A step of failures only has no latency.
    assert.deepEqual(last, {
      ...IDLE,
      time: new Date(T0 + STEP).toISOString(),
      requests: 1,
      errors: 1,
    })
  })

  it('keeps the most active requests and the last resident memory sampled in a step', () => {
    const { h, clock, gauges } = history()
    const sample = (activeRequests: number, residentBytes: number | undefined) => {
      gauges.splice(0, gauges.length, { model: MODEL, activeRequests, residentBytes })
      h.sample()
    }
    sample(2, 100)
    clock.now += 5000
    sample(7, 300)
    clock.now += 5000
    sample(1, 200)
    clock.now += 5000
    // Not measured (a runner starting): the last measure stays.
    sample(0, undefined)
    clock.now += STEP
    // Read time samples too: the current step has the gauges as they are now.
    gauges.splice(0, gauges.length, { model: MODEL, activeRequests: 3, residentBytes: 400 })
    const [before, now] = h.points(MODEL).slice(-2) as [HistoryPoint, HistoryPoint]
    assert.deepEqual([before.max_active_requests, before.resident_bytes], [7, 200])
    assert.deepEqual([now.max_active_requests, now.resident_bytes], [3, 400])
    assert.equal(now.requests, 0)
  })

  it('holds nothing for a model idle and not loaded, and drops steps past the window', () => {
    const { h, clock, gauges } = history({ keep: 5 })
    // Touched but at rest: no step, no entry.
    gauges.push({ model: NAMESAKE, activeRequests: 0, residentBytes: 0 })
    h.sample()
    assert.equal(h.size, 0)
    h.request(MODEL, 'success', 3)
    clock.now += STEP
    h.request(MODEL, 'success', 3)
    assert.equal(h.size, 1)
    clock.now += 3 * STEP
    // The first step is the oldest of the five.
    assert.deepEqual(
      h.points(MODEL).map((p) => p.requests),
      [1, 1, 0, 0, 0],
    )
    clock.now += STEP
    assert.deepEqual(
      h.points(MODEL).map((p) => p.requests),
      [1, 0, 0, 0, 0],
    )
    clock.now += STEP
    // Nothing left in the window: all zeros, and the model's entry is gone.
    const points = h.points(MODEL)
    assert.equal(points.length, 5)
    for (const p of points) assert.deepEqual({ ...p, time: '' }, { ...IDLE, time: '' })
    assert.equal(h.size, 0)
    // A model never seen answers the same, and is not held either.
    assert.equal(h.points({ namespaceId: 'ns_9', modelId: 'other_1_0_0' }).length, 5)
    assert.equal(h.size, 0)
  })

  it('drops an idle model on the sampling pass, without being read', () => {
    const { h, clock } = history({ keep: 3 })
    h.request(MODEL, 'success', 3)
    clock.now += 3 * STEP
    assert.equal(h.size, 1)
    h.sample()
    assert.equal(h.size, 0)
  })

  it('keeps models apart by namespace, and forgets a deleted one', () => {
    const { h } = history()
    h.request(MODEL, 'success', 3)
    h.request(NAMESAKE, 'error', 3)
    h.request(NAMESAKE, 'error', 3)
    assert.deepEqual(
      [h.points(MODEL).at(-1)?.requests, h.points(NAMESAKE).at(-1)?.requests],
      [1, 2],
    )
    h.forget(NAMESAKE)
    assert.equal(h.size, 1)
    assert.equal(h.points(NAMESAKE).at(-1)?.requests, 0)
    assert.equal(h.points(MODEL).at(-1)?.requests, 1)
  })

  it('counts a request in the newest step when the clock went back', () => {
    const { h, clock } = history()
    h.request(MODEL, 'success', 3)
    clock.now -= 2 * STEP
    h.request(MODEL, 'success', 3)
    clock.now += 2 * STEP
    assert.equal(h.points(MODEL).at(-1)?.requests, 2)
  })

  it('samples on a timer once started, until closed', async () => {
    let samples = 0
    const h = new ModelHistory(
      {
        sample: () => {
          samples += 1
          return [{ model: MODEL, activeRequests: 1, residentBytes: 10 }]
        },
      },
      { sampleMs: 5 },
    )
    h.start()
    await new Promise((resolve) => setTimeout(resolve, 50))
    h.close()
    const seen = samples
    assert.ok(seen > 0)
    assert.equal(h.points(MODEL).at(-1)?.max_active_requests, 1)
    await new Promise((resolve) => setTimeout(resolve, 30))
    // One more: the read's own.
    assert.equal(samples, seen + 1)
    // Closed for good: started again, it samples no more.
    h.start()
    await new Promise((resolve) => setTimeout(resolve, 30))
    assert.equal(samples, seen + 1)
  })
})

describe('Metrics with several inference watchers', () => {
  it('tells each of requests and cold loads, and the ones that forget of a deleted model', () => {
    const metrics = new Metrics()
    const { h } = history()
    const told: string[] = []
    metrics.watchInference({
      request: (m, outcome) => told.push(`${m.modelId} ${outcome}`),
      coldLoad: (m) => told.push(`${m.modelId} cold`),
    })
    metrics.watchInference(h)
    metrics.observeColdLoad(MODEL)
    metrics.observeInference(MODEL, 'success', 0.004)
    metrics.observeInference(MODEL, 'rejected', 0.001)
    assert.deepEqual(told, ['mlp_1_0_0 cold', 'mlp_1_0_0 success', 'mlp_1_0_0 rejected'])
    const last = h.points(MODEL).at(-1)
    assert.deepEqual([last?.requests, last?.errors, last?.cold_loads], [2, 1, 1])
    assert.notEqual(last?.latency_ms.p50 ?? null, null)
    metrics.forgetModel(MODEL)
    assert.equal(h.size, 0)
  })
})
