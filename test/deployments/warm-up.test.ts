import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { deploymentHarness } from './deployment-harness.js'

/** `deployed` means the model answered one inference made from its signature. */
describe('warm-up before serving', () => {
  it('serves a model that refuses its made-up warm-up request: it answered', async () => {
    // A convolution net whose named dimensions cannot be 1 refuses zeros of that shape, yet
    // serves real requests.
    const h = await deploymentHarness({ mode: 'forge-inference_failed-on-infer', warmUp: true })
    try {
      const model = await h.model('refuses')
      await h.manager.deploy(model)
      const settled = await h.manager.waitUntilSettled(model, 5000)
      assert.deepEqual([settled.status.state, settled.status.reason], ['deployed', 'ready'])
    } finally {
      await h.close()
    }
  })

  it('restarts a runner that crashes in its warm-up, as any crash, and never serves it', async () => {
    const h = await deploymentHarness({ mode: 'crash-on-infer', warmUp: true, maxRestarts: 1 })
    try {
      const model = await h.model('crashes')
      await h.manager.deploy(model)
      const settled = await h.manager.waitUntilSettled(model, 10_000)
      assert.deepEqual([settled.status.state, settled.status.reason], ['failed', 'runner_crashed'])
      assert.equal((await h.pids()).length, 2, 'one restart, then failed')
    } finally {
      await h.close()
    }
  })
})
