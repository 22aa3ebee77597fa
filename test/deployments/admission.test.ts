import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { pino } from 'pino'
import { DeploymentManager } from '../../src/deployments/deployment-manager.js'
import { eventually, isGone } from '../helpers/processes.js'
import { deploymentHarness, MIB } from './deployment-harness.js'

const GIB = 1024 * MIB

/** Admission: a deployment starts only while its resources fit the node. */
describe('admission on the local node', () => {
  it('keeps a deployment pending with its reason until another is undeployed', async () => {
    // Loaded, the first is counted by what its runner holds; the second asks for the whole node.
    const h = await deploymentHarness({ mode: 'echo', node: { memoryBytes: 1 * GIB } })
    try {
      const big = await h.model('big', { memoryBytes: 1 * GIB })
      const small = await h.model('small', { memoryBytes: 1 * GIB })
      await h.manager.deploy(big)
      assert.equal((await h.manager.waitUntilSettled(big, 5000)).status.state, 'deployed')
      const waiting = (await h.manager.deploy(small)).deployment
      assert.equal(waiting.status.state, 'pending')
      assert.equal(waiting.status.reason, 'insufficient_memory')
      assert.match(waiting.message ?? '', /^asks for 1073741824 bytes; \d+ of 1073741824 are free$/)
      assert.deepEqual((await h.recorded(small))?.status, waiting.status)

      const stopped = await h.manager.undeploy(big)
      assert.equal(stopped.status.state, 'not_deployed')
      assert.equal(stopped.status.reason, 'undeployed')
      const started = await h.manager.waitUntilSettled(small, 5000)
      assert.equal(started.status.state, 'deployed')
      assert.equal(started.status.reason, 'ready')
    } finally {
      await h.close()
    }
  })

  it('admits what waits for room once the node grows (a swarm gained a node), not before', async () => {
    const h = await deploymentHarness({ mode: 'echo', node: { memoryBytes: 1 * GIB } })
    try {
      const big = await h.model('first', { memoryBytes: 1 * GIB })
      const small = await h.model('second', { memoryBytes: 1 * GIB })
      await h.manager.deploy(big)
      assert.equal((await h.manager.waitUntilSettled(big, 5000)).status.state, 'deployed')
      assert.equal((await h.manager.deploy(small)).deployment.status.state, 'pending')
      const node = { cpus: 2, cpuOvercommit: 1, memoryBytes: 1 * GIB, gpus: 0 }
      let told = 0
      h.scheduler.onResize(() => {
        told += 1
      })
      h.scheduler.resize(node)
      // The same node again says nothing new: nobody is told, the second still waits.
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.equal(told, 0)
      assert.equal((await h.recorded(small))?.status.state, 'pending')
      h.scheduler.resize({ ...node, memoryBytes: 2 * GIB })
      assert.equal(told, 1)
      assert.equal((await h.manager.waitUntilSettled(small, 5000)).status.state, 'deployed')
      assert.equal(h.manager.nodeView().usage.memoryBytes, 2 * GIB)
      // Smaller again: what runs keeps its reservation; a newcomer waits for room.
      h.scheduler.resize(node)
      const third = await h.model('third', { memoryBytes: 1 * GIB })
      assert.equal((await h.manager.deploy(third)).deployment.status.state, 'pending')
      assert.equal((await h.recorded(small))?.status.state, 'deployed')
    } finally {
      await h.close()
    }
  })

  it('holds no CPUs: a 2-core node loads more models than it has CPUs, each with its threads', async () => {
    // CPUs used to be reserved: two models of 1.5 CPUs did not fit on 2 CPUs.
    const h = await deploymentHarness({ mode: 'echo', node: { cpus: 2, cpuOvercommit: 1 } })
    try {
      const models = await Promise.all(
        ['one', 'two', 'three'].map((n) => h.model(n, { numCpus: 1.5 })),
      )
      for (const m of models) await h.manager.deploy(m)
      for (const m of models) {
        assert.equal((await h.manager.waitUntilSettled(m, 5000)).status.state, 'deployed')
      }
      assert.equal(h.manager.nodeView().usage.reserved.cpus, 0)
    } finally {
      await h.close()
    }
  })

  it('a wait returns at once, with the reason, when the deployment waits for capacity', async () => {
    // It used to run out its whole bound (5 minutes through the API) saying nothing, while the
    // record said pending/insufficient_* from the first moment.
    const h = await deploymentHarness({ mode: 'echo', node: { memoryBytes: 1 * GIB } })
    try {
      const big = await h.model('hog', { memoryBytes: 1 * GIB })
      const small = await h.model('queued', { memoryBytes: 1 * GIB })
      await h.manager.deploy(big)
      assert.equal((await h.manager.waitUntilSettled(big, 5000)).status.state, 'deployed')
      await h.manager.deploy(small)
      const bound = 120_000
      let timer: NodeJS.Timeout | undefined
      const outcome = await Promise.race([
        h.manager.waitUntilSettled(small, bound),
        new Promise<'still waiting'>((resolve) => {
          timer = setTimeout(resolve, 10_000, 'still waiting')
        }),
      ])
      clearTimeout(timer)
      assert.ok(outcome !== 'still waiting', 'the wait returned long before its bound')
      assert.deepEqual(
        [outcome.status.state, outcome.status.reason],
        ['pending', 'insufficient_memory'],
      )
    } finally {
      await h.close()
    }
  })

  it('counts a deployment by its memory_gb until its runner is measured, then by what it holds', async () => {
    const h = await deploymentHarness({ mode: 'echo', node: { memoryBytes: 1 * GIB } })
    try {
      const a = await h.model('first', { memoryBytes: 768 * MIB })
      const b = await h.model('second', { memoryBytes: 512 * MIB })
      await h.manager.deploy(a)
      // While the first loads it holds its whole 768 MiB: the second waits.
      const waiting = (await h.manager.deploy(b)).deployment
      assert.equal(waiting.status.reason, 'insufficient_memory')
      // Loaded and measured, the first holds far less: the second is admitted beside it.
      assert.equal((await h.manager.waitUntilSettled(a, 5000)).status.state, 'deployed')
      assert.equal((await h.manager.waitUntilSettled(b, 5000)).status.state, 'deployed')
      const first = h.manager.nodeView().deployments.find((d) => d.model.modelId === a.modelId)
      assert.ok(first !== undefined && first.chargedMemoryBytes < 768 * MIB)
      // What its runner measured after the load (resident memory moves a little since).
      const resident = first.residentBytes ?? 0
      assert.ok(Math.abs(first.chargedMemoryBytes - resident) < 0.25 * resident)
    } finally {
      await h.close()
    }
  })

  it('fails at once what can never fit, and GPU requests on a node without GPUs', async () => {
    const h = await deploymentHarness({ mode: 'echo', node: { cpus: 2, cpuOvercommit: 2 } })
    try {
      const huge = await h.model('huge', { numCpus: 8 })
      const gpu = await h.model('wants-gpu', { numGpus: 1 })
      const greedy = await h.model('greedy', { memoryBytes: 64 * GIB })
      await h.manager.deploy(huge)
      await h.manager.deploy(gpu)
      await h.manager.deploy(greedy)
      for (const [model, reason] of [
        [huge, 'never_fits'],
        [gpu, 'gpu_unavailable'],
        [greedy, 'never_fits'],
      ] as const) {
        const settled = await h.manager.waitUntilSettled(model, 1000)
        assert.equal(settled.status.state, 'failed', model.name)
        assert.equal(settled.status.reason, reason, model.name)
        assert.deepEqual(await h.recorded(model), settled)
      }
      assert.deepEqual(await h.pids(), [])
    } finally {
      await h.close()
    }
  })
})

describe('deployment lifecycle', () => {
  it('redeploys by loading a new runner before stopping the old', async () => {
    const h = await deploymentHarness({ mode: 'echo' })
    try {
      const model = await h.model('hot-swap')
      await h.manager.deploy(model)
      await h.manager.waitUntilSettled(model, 5000)
      const before = h.runnerOf(model)
      assert.equal((await h.manager.deploy(model)).cached, true)
      const { deployment } = await h.manager.deploy(model, { reload: true })
      assert.equal(deployment.status.reason, 'redeploying')
      // The old runner keeps answering while the new one loads.
      assert.equal(h.runnerOf(model), before)
      await eventually(() => h.manager.deploymentOf(model).status.state === 'deployed')
      const after = h.runnerOf(model)
      assert.notEqual(after.id, before.id)
      await eventually(() => isGone(Number(before.id)))
      assert.ok(!isGone(Number(after.id)))
    } finally {
      await h.close()
    }
  })

  it('on a new start, brings back what was deployed, rests what was half-done, keeps failures', async () => {
    const h = await deploymentHarness({ mode: 'echo' })
    try {
      const kept = await h.model('kept')
      const stuck = await h.model('stuck')
      await h.manager.deploy(kept)
      await h.manager.waitUntilSettled(kept, 5000)
      await h.manager.close()
      const broken = await h.model('broken')
      await h.store.setDesiredState(broken.namespaceId, broken.modelId, 'deployed')
      await h.store.setDeploymentStatus(broken.namespaceId, broken.modelId, {
        status: { state: 'failed', reason: 'load_timeout', since: broken.createdAt },
        message: 'it took too long',
        deployedAt: null,
      })
      // As a crash mid-unload would leave it.
      await h.store.setDeploymentStatus(stuck.namespaceId, stuck.modelId, {
        status: { state: 'unloading', reason: 'unload_requested', since: stuck.createdAt },
        message: null,
        deployedAt: null,
      })
      // A second manager on the same store and scheduler: the restarted server.
      const restarted = new DeploymentManager(
        {
          metadata: h.store,
          scheduler: h.scheduler,
          modelDir: () => '/nowhere',
          metrics: h.metrics,
          logger: pino({ level: 'silent' }),
        },
        { loadTimeoutMs: 3000, maxRestarts: 0, restartBackoffMs: 10, drainMs: 100 },
      )
      await restarted.reconcile()
      const back = await restarted.waitUntilSettled(kept, 5000)
      assert.equal(back.status.state, 'deployed')
      assert.equal((await h.recorded(stuck))?.status.state, 'not_deployed')
      // A failed deployment waits for someone to deploy it again.
      assert.equal((await h.recorded(broken))?.status.reason, 'load_timeout')
      assert.equal((await h.recorded(kept))?.status.state, 'deployed')
      // Nor does following the store start it, or touch the others: a pass is quiet.
      for (const row of await h.store.listDesiredStates()) {
        assert.equal(restarted.differs(row, row), false)
      }
      await restarted.close()
    } finally {
      await h.close()
    }
  })
})
