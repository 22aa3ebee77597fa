import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  addBuckets,
  emptyBucket,
  hourOf,
  type InferenceBucket,
  LATENCY_BOUNDS_MS,
  LATENCY_BUCKETS,
  latencyBucketOf,
  latencyQuantile,
  performanceOf,
} from './inference-stats.js'

const MODEL = {
  namespaceId: 'ns_1',
  organizationId: 'org_1',
  modelId: 'mlp_1_0_0',
  name: 'mlp',
  version: '1.0.0',
}

/** A histogram with `n` requests in the bucket of each latency given. */
function histogram(...latencies: number[]): number[] {
  const counts = new Array<number>(LATENCY_BUCKETS).fill(0)
  for (const ms of latencies) counts[latencyBucketOf(ms)] = (counts[latencyBucketOf(ms)] ?? 0) + 1
  return counts
}

describe('inference statistics', () => {
  it('puts a latency in the first bucket whose bound is not below it', () => {
    assert.equal(latencyBucketOf(0), 0)
    assert.equal(latencyBucketOf(0.5), 0)
    assert.equal(latencyBucketOf(0.51), 1)
    assert.equal(latencyBucketOf(30_000), LATENCY_BOUNDS_MS.length - 1)
    assert.equal(latencyBucketOf(30_001), LATENCY_BUCKETS - 1)
    assert.equal(
      hourOf(Date.parse('2026-01-01T10:59:59.999Z')),
      hourOf(Date.parse('2026-01-01T10:00:00Z')),
    )
    assert.equal(
      hourOf(Date.parse('2026-01-01T11:00:00Z')) - hourOf(Date.parse('2026-01-01T10:00:00Z')),
      1,
    )
  })

  it('estimates percentiles by interpolating inside the bucket the rank falls in', () => {
    assert.equal(latencyQuantile(histogram(), 0.5), null)
    // Ten requests between 10 and 15 ms: the median halfway through that bucket.
    const tens = histogram(...new Array(10).fill(12))
    assert.equal(latencyQuantile(tens, 0.5), 12.5)
    assert.equal(latencyQuantile(tens, 1), 15)
    // 90 fast, 10 slow: p50 among the fast, p99 among the slow.
    const mixed = histogram(...new Array(90).fill(0.8), ...new Array(10).fill(400))
    const p50 = latencyQuantile(mixed, 0.5) ?? 0
    const p99 = latencyQuantile(mixed, 0.99) ?? 0
    assert.ok(p50 > 0.5 && p50 <= 1, `p50 ${p50}`)
    assert.ok(p99 > 250 && p99 <= 500, `p99 ${p99}`)
    // Past the last bound: the last bound, as Prometheus answers.
    assert.equal(latencyQuantile(histogram(60_000), 0.5), 30_000)
  })

  it('adds buckets and sums a model over hours, percentiles from the merged histogram', () => {
    const a: InferenceBucket = {
      ...emptyBucket(MODEL, 10),
      outcomes: { ...emptyBucket(MODEL, 10).outcomes, success: 3, bad_request: 1 },
      latencySumMs: 3,
      latencyCounts: histogram(1, 1, 1),
      coldLoads: 1,
      firstRequestAt: '2026-01-01T10:00:01.000Z',
      lastRequestAt: '2026-01-01T10:30:00.000Z',
    }
    const b: InferenceBucket = {
      ...emptyBucket(MODEL, 11),
      outcomes: { ...emptyBucket(MODEL, 11).outcomes, success: 1, timeout: 2 },
      latencySumMs: 9,
      latencyCounts: histogram(9),
      firstRequestAt: '2026-01-01T11:00:05.000Z',
      lastRequestAt: '2026-01-01T11:10:00.000Z',
    }
    const sum = addBuckets(a, b)
    assert.deepEqual(sum.outcomes, {
      success: 4,
      bad_request: 1,
      not_ready: 0,
      timeout: 2,
      rejected: 0,
      error: 0,
    })
    assert.equal(sum.firstRequestAt, a.firstRequestAt)
    assert.equal(sum.lastRequestAt, b.lastRequestAt)
    const other = { ...emptyBucket({ ...MODEL, modelId: 'aaa_1_0_0', name: 'aaa' }, 10) }
    const [first, second] = performanceOf([b, other, a])
    assert.equal(first?.modelId, 'aaa_1_0_0')
    assert.equal(first?.requests, 0)
    assert.equal(first?.latency, undefined)
    assert.equal(second?.requests, 7)
    assert.equal(second?.coldLoads, 1)
    assert.equal(second?.latency?.avgMs, 3)
    const { p50Ms = 0, p90Ms = 0, p99Ms = 0 } = second?.latency ?? {}
    assert.ok(0 < p50Ms && p50Ms <= p90Ms && p90Ms <= p99Ms && p99Ms <= 10, `${p50Ms} ${p99Ms}`)
  })
})
