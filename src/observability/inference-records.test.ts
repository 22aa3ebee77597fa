import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import {
  HOUR_MS,
  hourOf,
  type InferenceBucket,
  latencyBucketOf,
  MAX_HISTORY_HOURS,
} from '../domain/inference-stats.js'
import { InferenceRecorder, type InferenceRecordSink } from './inference-records.js'
import { createLogger } from './logger.js'

const MODEL = {
  namespaceId: 'ns_1',
  organizationId: 'org_1',
  modelId: 'mlp_1_0_0',
  name: 'mlp',
  version: '1.0.0',
}

/** A sink that keeps what it was given, and fails while `failing` is set. */
class FakeSink implements InferenceRecordSink {
  readonly added: InferenceBucket[][] = []
  readonly dropped: number[] = []
  failing = false

  async addInferenceBuckets(buckets: readonly InferenceBucket[]): Promise<void> {
    if (this.failing) throw new Error('database down')
    this.added.push([...buckets])
  }

  async dropInferenceBuckets(beforeHour: number): Promise<number> {
    this.dropped.push(beforeHour)
    return 0
  }
}

function recorder(sink: FakeSink, clock: { now: number }) {
  const logs: string[] = []
  const logger = createLogger('warn', {
    destination: new Writable({
      write(chunk, _encoding, done) {
        logs.push(String(chunk))
        done()
      },
    }),
  })
  const r = new InferenceRecorder({ sink, now: () => clock.now, logger }, { intervalMs: 60_000 })
  return { r, logs }
}

const T0 = Date.parse('2026-05-01T10:15:00.000Z')

describe('InferenceRecorder', () => {
  it('counts outcomes, the latency of successes and cold loads, per model and hour', async () => {
    const sink = new FakeSink()
    const clock = { now: T0 }
    const { r } = recorder(sink, clock)
    r.coldLoad(MODEL)
    r.request(MODEL, 'success', 4)
    r.request(MODEL, 'success', 12)
    r.request(MODEL, 'bad_request', 0.1)
    clock.now = T0 + HOUR_MS
    r.request(MODEL, 'timeout', 30_000)
    await r.flush()
    const [buckets] = sink.added
    assert.equal(buckets?.length, 2)
    const [first, second] = buckets as [InferenceBucket, InferenceBucket]
    assert.equal(first.hour, hourOf(T0))
    assert.deepEqual(
      [first.outcomes.success, first.outcomes.bad_request, first.coldLoads, first.latencySumMs],
      [2, 1, 1, 16],
    )
    assert.equal(first.latencyCounts[latencyBucketOf(4)], 1)
    assert.equal(first.latencyCounts[latencyBucketOf(12)], 1)
    assert.equal(
      first.latencyCounts.reduce((a, b) => a + b),
      2,
    )
    assert.equal(first.firstRequestAt, new Date(T0).toISOString())
    assert.equal(second.hour, hourOf(T0) + 1)
    // A failed request has no latency in the histogram.
    assert.deepEqual([second.outcomes.timeout, second.latencySumMs], [1, 0])
    // Written once: the next flush has nothing new.
    await r.flush()
    assert.equal(sink.added.length, 1)
  })

  it('keeps what a failed flush could not write, with what came meanwhile, for the next', async () => {
    const sink = new FakeSink()
    const clock = { now: T0 }
    const { r, logs } = recorder(sink, clock)
    r.request(MODEL, 'success', 2)
    sink.failing = true
    await r.flush()
    assert.equal(sink.added.length, 0)
    assert.match(logs.join(''), /could not record inference traffic/)
    r.request(MODEL, 'error', 1)
    sink.failing = false
    await r.close()
    assert.equal(sink.added.length, 1)
    const [bucket] = sink.added[0] as InferenceBucket[]
    assert.deepEqual([bucket?.outcomes.success, bucket?.outcomes.error], [1, 1])
  })

  it('drops records past their retention once an hour', async () => {
    const sink = new FakeSink()
    const clock = { now: T0 }
    const { r } = recorder(sink, clock)
    await r.flush()
    await r.flush()
    clock.now = T0 + HOUR_MS
    await r.flush()
    assert.deepEqual(sink.dropped, [
      hourOf(T0) - MAX_HISTORY_HOURS + 1,
      hourOf(T0) - MAX_HISTORY_HOURS + 2,
    ])
  })
})
