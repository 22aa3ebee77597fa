import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { mlpModel } from '../fixtures/onnx-models.js'
import { f32, safetensorsBytes } from '../fixtures/safetensors.js'
import { eventually } from '../helpers/processes.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, getModel, uploadAndWait } from '../helpers/uploads.js'

/** Deploy requests over HTTP on a node with room for one CPU: waiting, admission, refusals. */
describe('deploy requests on a small node', () => {
  let t: TestApp
  let ns: string
  const upload = async (
    name: string,
    fields: Record<string, string>,
    file: Record<string, Buffer>,
  ) => {
    return uploadAndWait(t, ns, { name, model_format: 'onnx', memory_gb: '0.5', ...fields }, file)
  }
  const onnx = { 'model.onnx': mlpModel() }

  before(async () => {
    // One CPU, and memory for one model's memory_gb (0.5 here) while it loads: loaded, it is
    // counted by what it holds, and the next one still asks for the whole node.
    t = await startTestApp({
      BERTH_NODE_CPUS: '1',
      BERTH_CPU_OVERCOMMIT: '1',
      BERTH_NODE_MEMORY_GB: '0.5',
      BERTH_DEPLOY_WAIT_TIMEOUT_MS: '300',
    })
    ns = await createNamespace(t, 'small-node')
  })
  after(() => t.close())

  it('waits only as long as configured, then shows why the model is pending', async () => {
    await upload('first', {}, onnx)
    // The wait is short on purpose; on a loaded machine the first may need longer to load.
    await eventually(async () => (await getModel(t, ns, 'first_1_0_0')).deployed, 15_000)
    const started = Date.now()
    const second = await upload('second', {}, onnx)
    assert.equal(second.deployment_status, 'pending')
    assert.ok(Date.now() - started < 5000)
    const pending = (await getModel(t, ns, 'second_1_0_0')).deployment
    assert.equal(pending.state, 'pending')
    assert.equal(pending.reason, 'insufficient_memory')
    assert.equal(typeof pending.message, 'string')

    const undeploy = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/first_1_0_0/undeploy`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(undeploy.statusCode, 200)
    await eventually(async () => (await getModel(t, ns, 'second_1_0_0')).deployed, 10_000)
  })

  it('fails a GPU request on a node without GPUs, and one that can never fit', async () => {
    const gpu = await upload('wants-gpu', { num_gpus: '1' }, onnx)
    assert.equal(gpu.deployment_status, 'failed')
    assert.equal((await getModel(t, ns, 'wants-gpu_1_0_0')).deployment.reason, 'gpu_unavailable')
    const huge = await upload('too-big', { num_cpus: '4' }, onnx)
    assert.equal(huge.deployment_status, 'failed')
    assert.equal((await getModel(t, ns, 'too-big_1_0_0')).deployment.reason, 'never_fits')
  })

  it('deploys weights by loading them in a runner, and refuses to run them', async () => {
    // Make room: the model the first test deployed holds part of the node's 0.5 GiB.
    const room = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/second_1_0_0/undeploy`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(room.statusCode, 200)
    const weights = await upload(
      'weights-only',
      { model_format: 'safetensors', num_cpus: '0.1' },
      { 'model.safetensors': safetensorsBytes({ w: f32([2, 2]) }) },
    )
    assert.notEqual(weights.deployment_status, 'failed')
    await eventually(async () => (await getModel(t, ns, 'weights-only_1_0_0')).deployed, 15_000)
    const res = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/weights-only_1_0_0/infer`,
      key: BOOTSTRAP_KEY,
      body: { inputs: [{ name: 'w', shape: [1], datatype: 'FP32', data: [1] }] },
    })
    assert.equal(res.statusCode, 400)
    assert.equal(res.json().error.code, 'model_not_servable')
  })
})
