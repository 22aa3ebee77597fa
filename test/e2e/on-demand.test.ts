import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { mlpModel } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { archivePart, createNamespace, formFields, uploadModel } from '../helpers/uploads.js'

/** Models uploaded without a deploy are served on their first request, over HTTP. */
describe('on-demand models over HTTP', () => {
  let t: TestApp
  let ns: string
  const x = { name: 'x', shape: [1, 16], datatype: 'FP32', data: new Array(16).fill(0.5) }
  const infer = (modelId: string) =>
    t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/${modelId}/infer`,
      key: BOOTSTRAP_KEY,
      body: { inputs: [x] },
    })
  const detail = async (modelId: string) =>
    (
      await t.request({
        method: 'GET',
        url: `/v1/namespaces/${ns}/models/${modelId}`,
        key: BOOTSTRAP_KEY,
      })
    ).json().model
  const upload = async (name: string, extra: Record<string, string> = {}) => {
    const res = await uploadModel(t, ns, [
      ...formFields({ name, version: '1.0.0', model_format: 'onnx', deploy: 'false', ...extra }),
      archivePart(await tarGzOf({ 'model.onnx': mlpModel() })),
    ])
    assert.equal(res.statusCode, 200, res.body)
    return res.json()
  }

  before(async () => {
    t = await startTestApp({ BERTH_IDLE_TIMEOUT_S: '0' })
    ns = await createNamespace(t, 'on-demand')
  })
  after(() => t.close())

  it('answers the first requests of a model uploaded without a deploy, with one load', async () => {
    const uploaded = await upload('lazy-mlp')
    assert.equal(uploaded.deployment_status, 'not_deployed')
    const before = await detail('lazy-mlp_1_0_0')
    assert.deepEqual(
      [before.deployment.state, before.deployment.desired, before.deployment.replicas],
      ['not_deployed', 'on_demand', 0],
    )
    const answers = await Promise.all(Array.from({ length: 4 }, () => infer('lazy-mlp_1_0_0')))
    for (const res of answers) assert.equal(res.statusCode, 200, res.body)
    assert.equal(new Set(answers.map((r) => JSON.stringify(r.json().outputs))).size, 1)
    const loaded = await detail('lazy-mlp_1_0_0')
    assert.deepEqual([loaded.deployment.state, loaded.deployment.replicas], ['deployed', 1])
    // Its OIP readiness follows: ready now.
    const ready = await t.request({
      method: 'GET',
      url: '/v2/models/lazy-mlp/ready',
      key: BOOTSTRAP_KEY,
      headers: { 'x-namespace': ns },
    })
    assert.equal(ready.statusCode, 200, ready.body)
  })

  it('answers 503 model_not_ready (undeployed) once undeployed, and serves again once deployed', async () => {
    await upload('off-mlp')
    assert.equal((await infer('off-mlp_1_0_0')).statusCode, 200)
    const undeploy = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/off-mlp_1_0_0/undeploy`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(undeploy.statusCode, 200, undeploy.body)
    const refused = await infer('off-mlp_1_0_0')
    assert.equal(refused.statusCode, 503, refused.body)
    assert.equal(refused.json().error.code, 'model_not_ready')
    assert.equal(refused.json().error.details.reason, 'undeployed')
    // A deploy keeps its policy (on demand) and loads it now.
    const deploy = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/off-mlp_1_0_0/deploy?wait=true`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(deploy.statusCode, 200, deploy.body)
    const model = await detail('off-mlp_1_0_0')
    assert.deepEqual([model.deployment.state, model.deployment.desired], ['deployed', 'on_demand'])
  })

  it('takes load_policy and idle_timeout_s on upload and deploy, and refuses bad ones', async () => {
    await upload('eager-mlp', { load_policy: 'eager' })
    // Eager without a deploy: registered only, until deployed.
    const refused = await infer('eager-mlp_1_0_0')
    assert.equal(refused.statusCode, 503, refused.body)
    const deploy = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/eager-mlp_1_0_0/deploy?wait=true`,
      key: BOOTSTRAP_KEY,
      body: { load_policy: 'on_demand', idle_timeout_s: 30 },
    })
    assert.equal(deploy.statusCode, 200, deploy.body)
    const model = await detail('eager-mlp_1_0_0')
    assert.deepEqual(
      [model.serving.load_policy, model.serving.idle_timeout_s, model.deployment.desired],
      ['on_demand', 30, 'on_demand'],
    )
    const bad = await uploadModel(t, ns, [
      ...formFields({
        name: 'bad-mlp',
        version: '1.0.0',
        model_format: 'onnx',
        load_policy: 'sometimes',
        idle_timeout_s: '-1',
      }),
      archivePart(await tarGzOf({ 'model.onnx': mlpModel() })),
    ])
    assert.equal(bad.statusCode, 422, bad.body)
    assert.equal(bad.json().error.code, 'request_validation_failed')
    const fields = bad.json().detail.map((d: { loc: string[] }) => d.loc.join('.'))
    assert.deepEqual(fields.sort(), ['body.idle_timeout_s', 'body.load_policy'])
  })
})
