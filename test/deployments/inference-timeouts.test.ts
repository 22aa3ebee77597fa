import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isBerthError } from '../../src/errors/berth-error.js'
import { ERROR_CODES } from '../../src/errors/error-codes.js'
import { InferenceService } from '../../src/inference/inference-service.js'
import { eventually, isGone } from '../helpers/processes.js'
import { deploymentHarness, f32 } from './deployment-harness.js'

/** A request over the configured timeout is a 504, and a hung runner is replaced. */
describe('inference timeouts', () => {
  it('times out a hung request and the one queued behind it, then replaces the runner', async () => {
    const h = await deploymentHarness({ mode: 'hang-on-infer', maxRestarts: 1 })
    try {
      const model = await h.model('slowpoke')
      await h.manager.deploy(model)
      await h.manager.waitUntilSettled(model, 5000)
      const hung = h.runnerOf(model)
      const inference = new InferenceService(
        { deployments: h.manager, metrics: h.metrics },
        { timeoutMs: 300, maxInFlightPerRunner: 1 },
      )
      const request = {
        id: undefined,
        inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1, 1], data: f32([1]) }],
        outputs: null,
        binaryOutputs: new Set<string>(),
      }
      const [first, second] = await Promise.allSettled([
        inference.infer(model, request),
        inference.infer(model, request),
      ])
      assert.ok(first.status === 'rejected' && isBerthError(first.reason, 'runner_timeout'))
      // The second waited behind it: out of time in the queue (inference_timeout), or handed
      // the runner just as it was killed (runner_timeout). Either way a 504.
      assert.ok(second.status === 'rejected' && isBerthError(second.reason))
      assert.equal(ERROR_CODES[second.reason.code], 'deadline_exceeded')
      const text = await h.metrics.registry.getSingleMetricAsString(
        'berth_inference_requests_total',
      )
      assert.match(text, /outcome="timeout"\} 2$/m)
      // The hung runner is killed and a new one takes its place.
      await eventually(() => isGone(Number(hung.id)))
      await eventually(() => h.manager.deploymentOf(model).status.state === 'deployed')
      assert.notEqual(h.runnerOf(model).id, hung.id)
    } finally {
      await h.close()
    }
  })
})
