import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { OWNER_LABEL, ownerOf } from '../../src/scheduler/runner-containers.js'
import { mlpModel, referenceMlp } from '../fixtures/onnx-models.js'
import { assertLocked, dockerOk, engineForTests, RUNTIME_IMAGE_ONNX } from '../helpers/docker.js'
import { assertClose } from '../helpers/inference.js'
import { eventually } from '../helpers/processes.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, getModel, uploadAndWait } from '../helpers/uploads.js'

const X = [1, 2, 3, 4]

describe('BERTH_SCHEDULER=docker: models served from containers of the engine', async () => {
  const found = await engineForTests(RUNTIME_IMAGE_ONNX)
  const skip = 'skip' in found ? found.skip : undefined
  let t: TestApp | undefined
  const containers = async () =>
    'skip' in found || t === undefined ? [] : found.engine.list(OWNER_LABEL, ownerOf(t.dataDir))

  before(async () => {
    if ('skip' in found) return
    t = await startTestApp({
      BERTH_SCHEDULER: 'docker',
      BERTH_DOCKER_HOST: found.host,
      BERTH_RUNTIME_IMAGE_ONNX: found.image,
    })
  })
  after(async () => {
    await t?.close()
    if (!('skip' in found) && t !== undefined) {
      // Closing the server removed every container it ran.
      assert.deepEqual(await containers(), [])
    }
  })

  it('checks the upload, deploys, serves and undeploys a model in a container with its limits', {
    skip,
  }, async () => {
    if ('skip' in found || t === undefined) return
    const app = t
    const ns = await createNamespace(app, 'containers')
    const up = await uploadAndWait(
      app,
      ns,
      { name: 'boxed', model_format: 'onnx', memory_gb: '0.5', num_cpus: '0.5' },
      { 'model.onnx': mlpModel(4, 8, 3, 7) },
    )
    assert.equal(up.deployment_status, 'deployed', JSON.stringify(up))

    const [id, ...others] = await containers()
    assert.equal(others.length, 0, 'one container: the upload check is gone')
    const state = await found.engine.inspect(id as string)
    assert.equal(state?.running, true)
    assert.equal(state?.memoryBytes, 0.5 * 1024 ** 3, 'memory_gb is the kernel-enforced limit')
    assert.equal(state?.cpus, 0.5, 'num_cpus is the CPU quota')
    await assertLocked(id as string, { noNewPrivileges: true })

    const res = await app.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/boxed_1_0_0/infer`,
      key: BOOTSTRAP_KEY,
      body: { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: X }] },
    })
    assert.equal(res.statusCode, 200, res.body)
    assertClose(res.json().outputs[0].data as number[], referenceMlp(X, 1, 4, 8, 3, 7))

    const undeployed = await app.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/boxed_1_0_0/undeploy`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(undeployed.statusCode, 200, undeployed.body)
    await eventually(async () => (await containers()).length === 0)
  })

  it('hands a deployment its num_gpus as a device request of its container', { skip }, async () => {
    if ('skip' in found) return
    const runtimes = await dockerOk(['info', '--format', '{{json .Runtimes}}'])
    const gpus = /nvidia/.test(runtimes)
    const app = await startTestApp({
      BERTH_SCHEDULER: 'docker',
      BERTH_DOCKER_HOST: found.host,
      BERTH_RUNTIME_IMAGE_ONNX: found.image,
      BERTH_NODE_GPUS: '1',
    })
    try {
      const ns = await createNamespace(app, 'gpus')
      const up = await uploadAndWait(
        app,
        ns,
        { name: 'on-gpu', model_format: 'onnx', memory_gb: '0.5', num_gpus: '1' },
        { 'model.onnx': mlpModel(4, 8, 3, 7) },
      )
      if (gpus) {
        assert.equal(up.deployment_status, 'deployed', JSON.stringify(up))
      } else {
        // An engine with no GPU runtime refuses the request it was given, and says so.
        assert.equal(up.deployment_status, 'failed', JSON.stringify(up))
        const model = await getModel(app, ns, 'on-gpu_1_0_0')
        assert.match(model.deployment.message, /device driver/, JSON.stringify(model.deployment))
      }
    } finally {
      await app.close()
    }
  })
})
