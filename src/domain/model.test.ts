import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DEFAULT_SERVING, sameRunners } from './model.js'

describe('serving settings', () => {
  it('run the same runners unless batching, replicas or the node selector change', () => {
    const a = { ...DEFAULT_SERVING, nodeSelector: { gpu: 'a100', zone: 'eu' } }
    // The same labels in another order, and a new load policy or idle time: the same runners.
    const reordered = { ...a, nodeSelector: { zone: 'eu', gpu: 'a100' } }
    assert.ok(sameRunners(a, reordered))
    assert.ok(sameRunners(a, { ...a, loadPolicy: 'on_demand', idleTimeoutS: 30 }))
    for (const changed of [
      { ...a, nodeSelector: { gpu: 'h100', zone: 'eu' } },
      { ...a, nodeSelector: { gpu: 'a100' } },
      { ...a, nodeSelector: { gpu: 'a100', zone: 'eu', rack: '7' } },
      { ...a, nodeSelector: {} },
      { ...a, replicas: 2 },
      { ...a, maxBatchSize: 4 },
      { ...a, maxQueueDelayUs: 100 },
    ]) {
      assert.equal(sameRunners(a, changed), false, JSON.stringify(changed))
      assert.equal(sameRunners(changed, a), false, JSON.stringify(changed))
    }
  })
})
