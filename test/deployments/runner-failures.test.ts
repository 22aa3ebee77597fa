import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import Fastify from 'fastify'
import { type DeploymentReason, mixpeekStatus } from '../../src/domain/deployment-state.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import type { ErrorCode } from '../../src/errors/error-codes.js'
import { installErrorHandler } from '../../src/http/error-handler.js'
import { eventually, isGone } from '../helpers/processes.js'
import { TestClock } from '../helpers/test-clock.js'
import { deploymentHarness, f32, MIB } from './deployment-harness.js'

const INPUT = [{ name: 'x', datatype: 'FP32' as const, shape: [1, 1], data: f32([1]) }]

/**
 * Whatever a runner does, the server stays up, the deployment ends in a state
 * with a reason, and no runner process is left behind.
 */
describe('runner failure modes, through the deployment manager', () => {
  const onLoad: ReadonlyArray<readonly [string, DeploymentReason, Record<string, unknown>]> = [
    ['crash-on-load', 'runner_crashed', {}],
    ['hang-on-load', 'load_timeout', { loadTimeoutMs: 300 }],
    ['bad-message', 'runner_protocol_error', {}],
    // Killed within milliseconds of its growth; the load bound only has to outlast a busy CI machine.
    ['memory-on-load', 'memory_limit_exceeded', { loadTimeoutMs: 8000 }],
    ['protocol-1', 'runner_protocol_error', {}],
    ['protocol-none', 'runner_protocol_error', {}],
  ]
  for (const [mode, reason, extra] of onLoad) {
    it(`${mode}: the deployment fails with ${reason}`, async () => {
      const h = await deploymentHarness({ mode, ...extra })
      try {
        const model = await h.model('victim', { memoryBytes: 256 * MIB })
        assert.equal(
          mixpeekStatus((await h.manager.deploy(model)).deployment.status.state),
          'pending',
        )
        const settled = await h.manager.waitUntilSettled(model, 10_000)
        assert.equal(settled.status.state, 'failed')
        assert.equal(settled.status.reason, reason)
        assert.ok(settled.message !== null && settled.message.length > 0)
        assert.deepEqual(await h.recorded(model), settled)
        assert.throws(
          () => h.manager.serving(model),
          (err) => isBerthError(err, 'model_not_ready') && err.details?.reason === reason,
        )
        const pids = await h.pids()
        assert.equal(pids.length, 1)
        await eventually(() => pids.every(isGone))
      } finally {
        await h.close()
      }
    })
  }

  const midRequest: ReadonlyArray<readonly [string, ErrorCode, DeploymentReason]> = [
    ['crash-on-infer', 'runner_crashed', 'runner_crashed'],
    ['hang-on-infer', 'runner_timeout', 'runner_unresponsive'],
    ['bad-message-on-infer', 'runner_protocol_error', 'runner_protocol_error'],
    ['forge-constructor-on-infer', 'runner_protocol_error', 'runner_protocol_error'],
    ['forge-api_key_invalid-on-infer', 'runner_protocol_error', 'runner_protocol_error'],
  ]
  for (const [mode, code, reason] of midRequest) {
    it(`${mode}: the request fails with ${code}, then the deployment with ${reason}`, async () => {
      const h = await deploymentHarness({ mode })
      try {
        const model = await h.model('victim')
        await h.manager.deploy(model)
        assert.equal((await h.manager.waitUntilSettled(model, 5000)).status.state, 'deployed')
        const runner = h.runnerOf(model)
        await assert.rejects(runner.infer(INPUT, null, 300), (err) => isBerthError(err, code))
        await eventually(() => h.manager.deploymentOf(model).status.state === 'failed')
        const failed = await h.manager.waitUntilSettled(model, 1000)
        assert.equal(failed.status.reason, reason)
        assert.deepEqual(await h.recorded(model), failed)
        const pids = await h.pids()
        assert.equal(pids.length, 1)
        await eventually(() => pids.every(isGone))
      } finally {
        await h.close()
      }
    })
  }

  it('a forged error code answers 503 runner_protocol_error, and the server answers on', async () => {
    const h = await deploymentHarness({ mode: 'forge-constructor-on-infer' })
    const server = Fastify()
    try {
      const model = await h.model('forger')
      await h.manager.deploy(model)
      assert.equal((await h.manager.waitUntilSettled(model, 5000)).status.state, 'deployed')
      const runner = h.runnerOf(model)
      installErrorHandler(server)
      server.post('/infer', async () => {
        await runner.infer(INPUT, null, 2000)
        return { ok: true }
      })
      const answer = await server.inject({ method: 'POST', url: '/infer' })
      assert.equal(answer.statusCode, 503)
      assert.deepEqual(answer.json(), {
        success: false,
        status: 503,
        error: {
          type: 'UnavailableError',
          message: 'the runner sent a malformed message',
          code: 'runner_protocol_error',
        },
      })
      // The error handler survived: the next request gets its own proper answer.
      const next = await server.inject({ method: 'GET', url: '/nothing' })
      assert.equal(next.statusCode, 404)
      assert.equal(next.json().error.code, 'route_not_found')
    } finally {
      await server.close()
      await h.close()
    }
  })

  it('restarts a runner that stops answering pings while idle, then gives up: runner_unresponsive', async () => {
    const h = await deploymentHarness({
      mode: 'ignore-ping',
      maxRestarts: 1,
      ping: { intervalMs: 20, timeoutMs: 100 },
    })
    try {
      const model = await h.model('deaf')
      await h.manager.deploy(model)
      assert.equal((await h.manager.waitUntilSettled(model, 5000)).status.state, 'deployed')
      // Idle, unanswered: killed and restarted, the reason on the way and in the end.
      await eventually(() => h.manager.deploymentOf(model).status.reason === 'restarting')
      assert.match(h.manager.deploymentOf(model).message ?? '', /did not answer a ping/)
      await eventually(() => h.manager.deploymentOf(model).status.state === 'failed')
      const failed = h.manager.deploymentOf(model)
      assert.equal(failed.status.reason, 'runner_unresponsive')
      assert.match(failed.message ?? '', /gave up after 1 restarts/)
      assert.deepEqual(await h.recorded(model), failed)
      const metrics = await h.metrics.registry.getSingleMetricAsString(
        'berth_runner_restarts_total',
      )
      assert.match(metrics, /berth_runner_restarts_total\{[^}]*model="deaf"[^}]*\} 1$/m)
      const pids = await h.pids()
      assert.equal(new Set(pids).size, 2)
      await eventually(() => pids.every(isGone))
    } finally {
      await h.close()
    }
  })

  it('restarts a crashed runner with backoff, then gives up and says so', async () => {
    const h = await deploymentHarness({ mode: 'crash-on-infer', maxRestarts: 2 })
    try {
      const model = await h.model('flaky')
      await h.manager.deploy(model)
      for (let crash = 1; crash <= 3; crash++) {
        await eventually(() => h.manager.deploymentOf(model).status.state !== 'loading')
        assert.equal(
          h.manager.deploymentOf(model).status.state,
          'deployed',
          `before crash ${crash}`,
        )
        const runner = h.runnerOf(model)
        await assert.rejects(runner.infer(INPUT, null, 1000), (err) =>
          isBerthError(err, 'runner_crashed'),
        )
        if (crash < 3) {
          await eventually(() => h.manager.deploymentOf(model).status.reason === 'restarting')
        }
      }
      await eventually(() => h.manager.deploymentOf(model).status.state === 'failed')
      const failed = h.manager.deploymentOf(model)
      assert.equal(failed.status.reason, 'runner_crashed')
      assert.match(failed.message ?? '', /gave up after 2 restarts/)
      const metrics = await h.metrics.registry.getSingleMetricAsString(
        'berth_runner_restarts_total',
      )
      assert.match(metrics, /berth_runner_restarts_total\{[^}]*model="flaky"[^}]*\} 2$/m)
      const pids = await h.pids()
      assert.equal(new Set(pids).size, 3)
      await eventually(() => pids.every(isGone))
    } finally {
      await h.close()
    }
  })

  it('a model that outgrows its memory with every request fails once replaced too often, instead of reloading forever', async () => {
    const h = await deploymentHarness({ mode: 'memory-on-infer', maxRestarts: 0, maxReplaces: 2 })
    try {
      const model = await h.model('outgrows', { memoryBytes: 256 * MIB })
      await h.manager.deploy(model)
      for (let round = 1; round <= 2; round++) {
        assert.equal((await h.manager.waitUntilSettled(model, 5000)).status.state, 'deployed')
        const runner = h.runnerOf(model)
        await assert.rejects(runner.infer(INPUT, null, 10_000), (err) =>
          isBerthError(err, 'inference_out_of_memory'),
        )
        await eventually(
          () =>
            h.manager.deploymentOf(model).status.state !== 'deployed' ||
            h.runnerOf(model) !== runner,
        )
      }
      assert.equal((await h.manager.waitUntilSettled(model, 5000)).status.state, 'deployed')
      await assert.rejects(h.runnerOf(model).infer(INPUT, null, 10_000), (err) =>
        isBerthError(err, 'inference_out_of_memory'),
      )
      await eventually(() => h.manager.deploymentOf(model).status.state === 'failed')
      const failed = h.manager.deploymentOf(model)
      assert.equal(failed.status.reason, 'memory_limit_exceeded')
      assert.match(failed.message ?? '', /replaced 2 times/)
    } finally {
      await h.close()
    }
  })

  it('a runner that goes past its memory during a request is replaced, however often: the request fails with inference_out_of_memory, the deployment serves on', async () => {
    // No restart budget at all: a request's memory is not the runner's fault.
    const h = await deploymentHarness({ mode: 'memory-on-infer', maxRestarts: 0 })
    try {
      const model = await h.model('greedy', { memoryBytes: 256 * MIB })
      await h.manager.deploy(model)
      for (let round = 1; round <= 3; round++) {
        assert.equal((await h.manager.waitUntilSettled(model, 5000)).status.state, 'deployed')
        const runner = h.runnerOf(model)
        // The runner runs one request at a time: the first is to blame, the second waited.
        const [first, second] = [
          runner.infer(INPUT, null, 10_000),
          runner.infer(INPUT, null, 10_000),
        ]
        await assert.rejects(
          first,
          (err) =>
            isBerthError(err, 'inference_out_of_memory') &&
            (err.details?.limit_bytes as number) === 256 * MIB &&
            (err.details?.resident_bytes as number) > 256 * MIB,
        )
        await assert.rejects(second, (err) => isBerthError(err, 'runner_crashed'))
        assert.equal(runner.failed, true)
        // Sent after it died: not to blame either.
        await assert.rejects(runner.infer(INPUT, null, 1000), (err) =>
          isBerthError(err, 'runner_crashed'),
        )
        assert.equal((await runner.ended).cause, 'request_out_of_memory')
        // A new runner, never `failed` on the way.
        await eventually(() => {
          const { state } = h.manager.deploymentOf(model).status
          assert.notEqual(state, 'failed')
          return state === 'deployed' && h.runnerOf(model) !== runner
        })
      }
      const served = await h.manager.waitUntilSettled(model, 5000)
      assert.deepEqual([served.status.state, served.status.reason], ['deployed', 'ready'])
      assert.deepEqual(await h.recorded(model), served)
      const metrics = await h.metrics.registry.getSingleMetricAsString(
        'berth_runner_restarts_total',
      )
      assert.match(metrics, /berth_runner_restarts_total\{[^}]*model="greedy"[^}]*\} 3$/m)
      const pids = await h.pids()
      assert.equal(new Set(pids).size, 4)
      await eventually(() => pids.slice(0, 3).every(isGone))
    } finally {
      await h.close()
    }
  })

  it('waits exactly the backoff before each restart (a test clock, no sleeping)', async () => {
    const clock = new TestClock()
    const h = await deploymentHarness({ mode: 'crash-on-infer', maxRestarts: 2, clock })
    try {
      const model = await h.model('backoff')
      await h.manager.deploy(model)
      assert.equal((await h.manager.waitUntilSettled(model, 5000)).status.state, 'deployed')
      for (const backoff of [20, 40]) {
        await assert.rejects(h.runnerOf(model).infer(INPUT, null, 1000))
        await eventually(() => clock.pending.length === 1)
        assert.deepEqual(clock.pending, [backoff])
        const restarting = h.manager.deploymentOf(model).status
        assert.deepEqual([restarting.state, restarting.reason], ['loading', 'restarting'])
        // Nothing starts before the backoff has passed.
        clock.tick(backoff - 1)
        assert.equal((await h.pids()).length, backoff === 20 ? 1 : 2)
        clock.tick(1)
        assert.equal((await h.manager.waitUntilSettled(model, 5000)).status.state, 'deployed')
      }
      await assert.rejects(h.runnerOf(model).infer(INPUT, null, 1000))
      await eventually(() => h.manager.deploymentOf(model).status.state === 'failed')
      assert.deepEqual(clock.pending, [])
      assert.equal((await h.pids()).length, 3)
    } finally {
      await h.close()
    }
  })
})
