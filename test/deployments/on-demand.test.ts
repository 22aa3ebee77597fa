import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { onDemandCharge } from '../../src/deployments/on-demand.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import { eventually } from '../helpers/processes.js'
import { deploymentHarness, MIB } from './deployment-harness.js'

const GIB = 1024 * MIB
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
    const h = await deploymentHarness({ mode: 'echo', node: { memoryBytes: 4 * GIB } })
    try {
      const [b, c, d, e] = await Promise.all(
        ['older', 'newer', 'third', 'fourth'].map((n) =>
          h.model(n, { memoryBytes: 1 * GIB }, 1, onDemand),
        ),
      )
      if (b === undefined || c === undefined || d === undefined || e === undefined) {
        throw new Error('no models')
      }
      ;(await h.manager.acquire(b, 10_000)).release()
      ;(await h.manager.acquire(c, 10_000)).release()
      // Loaded, each is counted by what its runner measured; one never loaded by an estimate.
      const charged = (m: typeof b) =>
        h.manager.nodeView().deployments.find((s) => s.model.modelId === m.modelId)
          ?.chargedMemoryBytes ?? 0
      const [cb, cc] = [charged(b), charged(c)]
      assert.ok(cb > 0 && cc > 0)
      const estimate = onDemandCharge(d, undefined).memoryBytes
      // A pinned model fills the node but for less than the estimate: short by half the smaller
      // of the two, so evicting the least recently used one alone makes room.
      const free = estimate - Math.min(cb, cc) / 2
      const pinned = await h.model('pinned', { memoryBytes: 4 * GIB - cb - cc - free })
      await h.manager.deploy(pinned)
      assert.equal((await h.manager.waitUntilSettled(pinned, 5000)).status.state, 'deployed')

      const third = await h.manager.acquire(d, 10_000)
      const state = (m: typeof b) => {
        const s = h.manager.deploymentOf(m).status
        return `${s.state}/${s.reason}`
      }
      assert.equal(state(b), 'not_deployed/evicted')
      assert.equal(state(c), 'deployed/ready')
      assert.equal(state(pinned), 'deployed/ready')
      assert.equal(await counter(h, 'berth_model_evictions_total', 'older'), 1)
      // With the loaded on-demand models busy, nothing can make room: refused at once.
      const second = await h.manager.acquire(c, 1000)
      const started = Date.now()
      await assert.rejects(
        h.manager.acquire(e, 10_000),
        (err) =>
          isBerthError(err, 'model_not_ready') && err.details?.reason === 'insufficient_memory',
      )
      assert.ok(Date.now() - started < 5000, 'refused without waiting out its bound')
      assert.equal(state(c), 'deployed/ready')
      // Refused, it rests rather than loading later for nobody.
      assert.equal(state(e), 'not_deployed/on_demand')
      second.release()
      third.release()
      // Once they are idle, its next request evicts one and loads.
      ;(await h.manager.acquire(e, 10_000)).release()
      assert.equal(state(e), 'deployed/ready')
      assert.ok([state(c), state(d)].includes('not_deployed/evicted'))
    } finally {
      await h.close()
    }
  })
})
