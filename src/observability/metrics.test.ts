import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Metrics } from './metrics.js'

describe('metrics', () => {
  it("forgets every series of a deleted model, the extra-label ones too, and keeps the others'", async () => {
    const metrics = new Metrics()
    const gone = { namespace: 'ns_1', model: 'gone', version: '1.0.0' }
    const kept = { namespace: 'ns_1', model: 'kept', version: '1.0.0' }
    for (const model of [gone, kept]) {
      metrics.setDeploymentState(model, 'deployed')
      metrics.inferenceRequests.inc({ ...model, outcome: 'success' })
      metrics.inferenceRequests.inc({ ...model, outcome: 'rejected' })
      metrics.inferenceDuration.observe(model, 0.01)
      metrics.runnerRestarts.inc(model)
    }
    metrics.forgetModel(gone)
    const { body } = await metrics.render()
    assert.doesNotMatch(body, /model="gone"/)
    assert.match(body, /berth_deployment_state\{[^}]*model="kept"[^}]*state="deployed"\} 1/)
    assert.match(
      body,
      /berth_inference_requests_total\{[^}]*model="kept"[^}]*outcome="rejected"\} 1/,
    )
  })

  it('reports the capacity leaks the watcher counts at each scrape, and 0 with none', async () => {
    const metrics = new Metrics()
    assert.match((await metrics.render()).body, /^berth_capacity_leaks 0$/m)
    let leaks = 3
    metrics.watchCapacityLeaks(() => leaks)
    assert.match((await metrics.render()).body, /^berth_capacity_leaks 3$/m)
    leaks = 0
    assert.match((await metrics.render()).body, /^berth_capacity_leaks 0$/m)
  })
})
