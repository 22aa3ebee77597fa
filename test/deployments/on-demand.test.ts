import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Model } from '../../src/domain/model.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import { eventually } from '../helpers/processes.js'
import { deploymentHarness, MIB } from './deployment-harness.js'

const onDemand = { loadPolicy: 'on_demand' as const }
const counter = async (
  h: { metrics: { registry: { getSingleMetricAsString(n: string): Promise<string> } } },
  name: string,
  model: string,
) => {
  const text = await h.metrics.registry.getSingleMetricAsString(name)
  const line = text.split('\n').find((l) => l.includes(`model="${model}"`) && !l.startsWith('#'))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

/** On-demand deployments: loaded by their first request, unloaded when idle or evicted. */
describe('on-demand deployments', () => {
  it('loads a model at rest for its first request, once for all who ask meanwhile', async () => {
    const h = await deploymentHarness({ mode: 'echo' })
    try {
      const model = await h.model('lazy', {}, 1, onDemand)
      assert.equal(h.manager.deploymentOf(model).status.state, 'not_deployed')
      assert.deepEqual(await h.pids(), [], 'nothing loads before a request')
      const held = await Promise.all(
        Array.from({ length: 6 }, () => h.manager.acquire(model, 10_000)),
      )
      for (const a of held) a.release()
      assert.equal(new Set(held.map((a) => a.pool.targets[0]?.id)).size, 1)
      assert.equal((await h.pids()).length, 1, 'one runner for six first requests')
      const d = h.manager.deploymentOf(model)
      assert.deepEqual([d.status.state, d.desired], ['deployed', 'on_demand'])
      assert.equal(await counter(h, 'berth_model_cold_loads_total', 'lazy'), 1)
      // Held while it loaded: their waits are in the cold-load histogram.
      const waits = await h.metrics.registry.getSingleMetricAsString(
        'berth_model_cold_load_wait_seconds',
      )
      assert.match(waits, /berth_model_cold_load_wait_seconds_count\{[^}]*model="lazy"[^}]*\} 6/)
      // Warm now: no new load.
      ;(await h.manager.acquire(model, 1000)).release()
      assert.equal((await h.pids()).length, 1)
    } finally {
      await h.close()
    }
  })

  it('never brings back a deleted model for a request that looked it up before', async () => {
    const h = await deploymentHarness({ mode: 'echo' })
    try {
      const model = await h.model('deleted', {}, 1, onDemand)
      ;(await h.manager.acquire(model, 10_000)).release()
      await h.manager.remove(model)
      await assert.rejects(h.manager.acquire(model, 10_000), (err) =>
        isBerthError(err, 'model_not_found'),
      )
      assert.deepEqual(h.manager.nodeView().deployments, [])
    } finally {
      await h.close()
    }
  })

  it('answers inference_timeout (504) when the model does not load within the request time', async () => {
    const h = await deploymentHarness({ mode: 'hang-on-load', loadTimeoutMs: 5000 })
    try {
      const model = await h.model('slow', {}, 1, onDemand)
      const started = Date.now()
      await assert.rejects(h.manager.acquire(model, 300), (err) =>
        isBerthError(err, 'inference_timeout'),
      )
      assert.ok(Date.now() - started < 3000)
    } finally {
      await h.close()
    }
  })

  it('refuses an undeployed model at once, without loading it', async () => {
    const h = await deploymentHarness({ mode: 'echo' })
    try {
      const model = await h.model('off', {}, 1, onDemand)
      await h.manager.undeploy(model)
      await assert.rejects(
        h.manager.acquire(model, 10_000),
        (err) => isBerthError(err, 'model_not_ready') && err.details?.reason === 'undeployed',
      )
      const eager = await h.model('registered')
      await assert.rejects(h.manager.acquire(eager, 10_000), (err) =>
        isBerthError(err, 'model_not_ready'),
      )
      assert.deepEqual(await h.pids(), [])
    } finally {
      await h.close()
    }
  })

  it('unloads a model idle past its idle_timeout_s, and loads it again on the next request', async () => {
    const h = await deploymentHarness({ mode: 'echo' })
    try {
      const model = await h.model('sleepy', {}, 1, { ...onDemand, idleTimeoutS: 1 })
      const first = await h.manager.acquire(model, 10_000)
      // Held by a request: never idle, however long it runs.
      await new Promise((r) => setTimeout(r, 1300))
      assert.equal(h.manager.deploymentOf(model).status.state, 'deployed')
      first.release()
      await eventually(() => h.manager.deploymentOf(model).status.state === 'not_deployed', 5000)
      const rested = h.manager.deploymentOf(model)
      assert.deepEqual([rested.status.reason, rested.desired], ['idle', 'on_demand'])
      assert.deepEqual((await h.recorded(model))?.status.reason, 'idle')
      ;(await h.manager.acquire(model, 10_000)).release()
      assert.equal(h.manager.deploymentOf(model).status.state, 'deployed')
      assert.equal((await h.pids()).length, 2)
    } finally {
      await h.close()
    }
  })

  it('evicts the least recently used idle on-demand model for a load that does not fit, never a pinned or busy one', async () => {
    // Every deployment is counted by what its runner measured (a fixture runner: tens of MiB),
    // so how many fit 400 MiB is not fixed: models are loaded one by one until one evicts.
    const h = await deploymentHarness({ mode: 'echo', node: { memoryBytes: 400 * MIB } })
    const state = (m: Model) => {
      const s = h.manager.deploymentOf(m).status
      return `${s.state}/${s.reason}`
    }
    try {
      const pinned = await h.model('pinned', { memoryBytes: 300 * MIB }, 1)
      await h.manager.deploy(pinned)
      assert.equal((await h.manager.waitUntilSettled(pinned, 5000)).status.state, 'deployed')
      const loaded: Awaited<ReturnType<typeof h.model>>[] = []
      let evicted: string | undefined
      for (let i = 0; i < 20 && evicted === undefined; i += 1) {
        const m = await h.model(`od-${i}`, { memoryBytes: 256 * MIB }, 1, onDemand)
        ;(await h.manager.acquire(m, 10_000)).release()
        evicted = loaded.find((l) => state(l) !== 'deployed/ready')?.modelId
        loaded.push(m)
      }
      // The least recently used went first, and only it; the pinned one stays.
      assert.equal(evicted, loaded[0]?.modelId)
      assert.equal(state(loaded[0] as Model), 'not_deployed/evicted')
      assert.ok(loaded.slice(1).every((m) => state(m) === 'deployed/ready'))
      assert.equal(state(pinned), 'deployed/ready')
      assert.equal(await counter(h, 'berth_model_evictions_total', 'od-0'), 1)

      // With every loaded on-demand model busy, nothing can make room: a new one is refused
      // at once (and rests), evicting nobody.
      const held = await Promise.all(loaded.slice(1).map((m) => h.manager.acquire(m, 1000)))
      let refused: unknown
      for (let i = 20; i < 40 && refused === undefined; i += 1) {
        const m = await h.model(`od-${i}`, { memoryBytes: 256 * MIB }, 1, onDemand)
        const started = Date.now()
        try {
          held.push(await h.manager.acquire(m, 10_000))
        } catch (err) {
          refused = err
          assert.ok(Date.now() - started < 5000, 'refused without waiting out its bound')
          assert.equal(state(m), 'not_deployed/on_demand')
        }
      }
      assert.ok(
        isBerthError(refused, 'model_not_ready') &&
          refused.details?.reason === 'insufficient_memory',
      )
      assert.ok(loaded.slice(1).every((m) => state(m) === 'deployed/ready'))
      for (const a of held) a.release()
    } finally {
      await h.close()
    }
  })
})
