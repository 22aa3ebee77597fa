import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Metrics, modelLabels } from './metrics.js'

/** A deleted model's record, as the lifecycle hands it to `forgetModel`. */
const model = (name: string, version = '1.0.0') => ({
  namespaceId: 'ns_1',
  organizationId: 'org_1',
  modelId: `${name}_${version.replaceAll('.', '_')}`,
  name,
  version,
})

describe('metrics', () => {
  it("forgets every series of a deleted model, the extra-label ones too, and keeps the others'", async () => {
    const metrics = new Metrics()
    const deleted = model('gone')
    const gone = modelLabels(deleted)
    const kept = modelLabels(model('kept'))
    for (const model of [gone, kept]) {
      metrics.setDeploymentState(model, 'deployed')
      metrics.inferenceRequests.inc({ ...model, outcome: 'success' })
      metrics.inferenceRequests.inc({ ...model, outcome: 'rejected' })
      metrics.inferenceDuration.observe(model, 0.01)
      metrics.runnerRestarts.inc(model)
    }
    metrics.forgetModel(deleted)
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

  it("labels the operator's series by namespace name and id, the id where the name is unknown", async () => {
    const metrics = new Metrics()
    metrics.setDeploymentState({ namespace: 'ns_1', model: 'a', version: '1' }, 'deployed')
    metrics.setDeploymentState({ namespace: 'ns_2', model: 'b', version: '1' }, 'deployed')
    metrics.setDeploymentState({ namespace: 'ns_3', model: 'c', version: '1' }, 'deployed')
    // Two organizations may each have a namespace called "shared".
    metrics.nameNamespaces(
      async () =>
        new Map([
          ['ns_1', 'shared'],
          ['ns_2', 'sha"red'],
        ]),
    )
    const { body } = await metrics.render()
    const state = (model: string) =>
      new RegExp(
        `^berth_deployment_state\\{(namespace="[^}]*),model="${model}",version="1",state="deployed"\\} 1$`,
        'm',
      ).exec(body)?.[1]
    assert.equal(state('a'), 'namespace="shared",namespace_id="ns_1"')
    assert.equal(state('b'), 'namespace="sha\\"red",namespace_id="ns_2"')
    assert.equal(state('c'), 'namespace="ns_3",namespace_id="ns_3"')
    assert.doesNotMatch(body, /[{,]namespace="ns_1"/)
    assert.match(body, /^berth_capacity_leaks 0$/m)
  })

  it('still answers a scrape when the namespace names cannot be read, labelled by id', async () => {
    const metrics = new Metrics()
    metrics.setDeploymentState({ namespace: 'ns_1', model: 'a', version: '1' }, 'deployed')
    metrics.nameNamespaces(async () => {
      throw new Error('the metadata store is closed')
    })
    const { body } = await metrics.render()
    assert.match(body, /namespace="ns_1",namespace_id="ns_1",model="a"/)
  })

  it("shows an organization no series without a namespace, and forgets a model's queue depth", async () => {
    const metrics = new Metrics()
    const deleted = model('a', '1')
    const labels = modelLabels(deleted)
    metrics.inferenceQueueDepth.inc(labels, 3)
    // A per-model family whose series lost its namespace label: no organization's to see.
    metrics.inferenceQueueDepth.set({ model: 'stray', version: '1' }, 1)
    const own = (await metrics.renderNamespaces(new Map([['ns_1', 'mine']]))).body
    assert.match(own, /^berth_inference_queue_depth\{namespace="mine",model="a",version="1"\} 3$/m)
    assert.doesNotMatch(own, /stray/)
    metrics.forgetModel(deleted)
    assert.doesNotMatch((await metrics.render()).body, /model="a"/)
  })
})
