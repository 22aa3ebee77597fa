import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RestartPolicy } from '../../src/deployments/restart-policy.js'

const policy = new RestartPolicy({
  maxRestarts: 5,
  backoffMs: 100,
  maxBackoffMs: 1000,
  resetAfterMs: 60_000,
  maxReplaces: 2,
})

describe('restart policy', () => {
  it('doubles the delay per consecutive failure, up to the cap, then gives up', () => {
    let history = { restarts: 0, readySince: undefined as number | undefined }
    const delays: number[] = []
    for (;;) {
      const decision = policy.decide(history, 0)
      if (!decision.restart) {
        assert.equal(decision.restarts, 6)
        break
      }
      delays.push(decision.delayMs)
      history = { ...decision.history }
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 1000])
  })

  it('gives a fresh budget to a deployment that served long enough since it was ready', () => {
    const tired = { restarts: 5, readySince: 1_000 }
    assert.equal(policy.decide(tired, 1_000 + 60_000).restart, false)
    const rested = policy.decide(tired, 1_000 + 60_001)
    assert.ok(rested.restart)
    assert.equal(rested.delayMs, 100)
    assert.deepEqual(rested.history, { restarts: 1, readySince: 1_000 })
  })

  it('never resets a deployment that was not ready since it went pending', () => {
    assert.equal(policy.decide({ restarts: 5, readySince: undefined }, 10 ** 12).restart, false)
  })

  it('with no budget, gives up at the first failure', () => {
    const none = new RestartPolicy({
      maxRestarts: 0,
      backoffMs: 1,
      maxBackoffMs: 1,
      resetAfterMs: 1,
      maxReplaces: 0,
    })
    assert.deepEqual(none.decide({ restarts: 0, readySince: undefined }, 0), {
      restart: false,
      restarts: 1,
    })
  })

  it('replaces at once up to maxReplaces within the window, then says the model does not fit', () => {
    const first = policy.replace({ count: 0, since: Number.NEGATIVE_INFINITY }, 1000)
    assert.deepEqual(first, { replace: true, history: { count: 1, since: 1000 } })
    assert.ok(first.replace)
    const second = policy.replace(first.history, 2000)
    assert.deepEqual(second, { replace: true, history: { count: 2, since: 1000 } })
    assert.ok(second.replace)
    const third = policy.replace(second.history, 3000)
    assert.equal(third.replace, false)
    assert.match(third.replace ? '' : third.why, /replaced 2 times within 60 s/)
    // A minute later the count starts again.
    assert.deepEqual(policy.replace(second.history, 1000 + 60_001), {
      replace: true,
      history: { count: 1, since: 61_001 },
    })
  })
})
