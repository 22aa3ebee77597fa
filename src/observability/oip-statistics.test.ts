import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { OipStatistics } from './oip-statistics.js'

const model = (n: number) => ({ namespaceId: 'ns_a', modelId: `m${n}_1_0_0`, uploadId: `upl_${n}` })

describe('OipStatistics', () => {
  it('counts successes, failures, queue and compute per model', () => {
    const stats = new OipStatistics(() => 1234)
    stats.finished(model(1), true, 2)
    stats.finished(model(1), false, 1)
    stats.ran(model(1), { queueMs: 0.5, computeMs: 1, inferences: 3 })
    const s = stats.of(model(1))
    assert.equal(s.inference_stats.success.count, 1)
    assert.equal(s.inference_stats.success.ns, 2_000_000)
    assert.equal(s.inference_stats.fail.count, 1)
    assert.equal(s.inference_stats.queue.ns, 500_000)
    assert.equal(s.inference_count, 3)
    assert.equal(s.last_inference, 1234)
    assert.equal(stats.of(model(2)).inference_stats.success.count, 0)
  })

  it('keeps at most maxModels, dropping the one counted longest ago (a deleted model)', () => {
    const stats = new OipStatistics(Date.now, 3)
    for (const n of [1, 2, 3]) stats.finished(model(n), true, 1)
    stats.finished(model(1), true, 1) // 1 is counted again: 2 is now the oldest
    stats.finished(model(4), true, 1)
    assert.equal(stats.of(model(2)).inference_stats.success.count, 0, 'dropped')
    assert.equal(stats.of(model(1)).inference_stats.success.count, 2, 'kept')
    assert.equal(stats.of(model(3)).inference_stats.success.count, 1)
    assert.equal(stats.of(model(4)).inference_stats.success.count, 1)
  })
})
