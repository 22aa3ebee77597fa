import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { mlpModel } from '../fixtures/onnx-models.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, uploadAndWait } from '../helpers/uploads.js'

/** A deployment's queue is bounded: past it, requests are refused at once, not queued. */
describe('overload', () => {
  let t: TestApp
  let ns: string
  before(async () => {
    t = await startTestApp({ BERTH_MAX_QUEUE_SIZE: '1' })
    ns = await createNamespace(t, 'overload')
    const answer = await uploadAndWait(
      t,
      ns,
      { name: 'mlp', model_format: 'onnx', memory_gb: '0.5' },
      { 'model.onnx': mlpModel(4, 8, 3, 7) },
    )
    assert.equal(answer.deployment_status, 'deployed')
  })
  after(() => t.close())

  it('answers 429 queue_full with Retry-After past BERTH_MAX_QUEUE_SIZE, and serves the rest', async () => {
    // One runs and one waits: a runner busy with a call is sent a second only for a full batch.
    // The others arrive before any answer can come back.
    const answers = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        t.request({
          method: 'POST',
          url: `/v1/namespaces/${ns}/models/mlp_1_0_0/infer`,
          key: BOOTSTRAP_KEY,
          body: { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [i, 1, 2, 3] }] },
        }),
      ),
    )
    const refused = answers.filter((a) => a.statusCode === 429)
    const served = answers.filter((a) => a.statusCode === 200)
    assert.ok(refused.length > 0, 'some requests are refused')
    assert.ok(served.length >= 2, 'the running and the queued ones are served')
    assert.equal(refused.length + served.length, answers.length)
    for (const answer of refused) {
      assert.equal(answer.headers['retry-after'], '1')
      assert.deepEqual(answer.json(), {
        success: false,
        status: 429,
        error: {
          type: 'TooManyRequestsError',
          message: 'the model has 1 requests waiting already; retry later',
          code: 'queue_full',
          details: { max_queue_size: 1 },
        },
      })
    }
    const metrics = (await t.request({ method: 'GET', url: '/metrics' })).body
    const rejected = metrics.match(
      /berth_inference_requests_total\{[^}]*outcome="rejected"\} (\d+)/,
    )
    assert.equal(Number(rejected?.[1]), refused.length)

    // Once the queue drains, the model answers again.
    const later = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/mlp_1_0_0/infer`,
      key: BOOTSTRAP_KEY,
      body: { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 1, 2, 3] }] },
    })
    assert.equal(later.statusCode, 200)
  })
})
