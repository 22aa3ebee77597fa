import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { InferenceService } from '../../src/inference/inference-service.js'
import { eventually, isGone } from '../helpers/processes.js'
import { deploymentHarness } from './deployment-harness.js'

const request = {
  id: undefined,
  inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1, 1], data: new Uint8Array(4) }],
  outputs: null,
  binaryOutputs: new Set<string>(),
}

/** The issue's `replicas`: runner processes per deployment, each admitted, requests spread. */
describe('replicas', () => {
  it('admits every replica, runs each in its own process and spreads requests over them', async () => {
    const h = await deploymentHarness({ mode: 'whoami', node: { cpus: 4, cpuOvercommit: 1 } })
    try {
      const model = await h.model('spread', { numCpus: 1 }, 3)
      await h.manager.deploy(model)
      assert.equal((await h.manager.waitUntilSettled(model, 5000)).status.state, 'deployed')
      assert.equal(h.manager.replicasOf(model), 3)
      const pids = await h.pids()
      assert.equal(new Set(pids).size, 3)

      // One call per runner at a time: twelve at once keep all three busy.
      const inference = new InferenceService(
        { deployments: h.manager, metrics: h.metrics },
        { timeoutMs: 5000, maxInFlightPerRunner: 1 },
      )
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => inference.infer(model, request)),
      )
      const answeredBy = answers.map((outputs) => {
        const data = outputs[0]?.data ?? new Uint8Array(4)
        return new DataView(data.buffer, data.byteOffset, 4).getInt32(0, true)
      })
      assert.deepEqual(new Set(answeredBy), new Set(pids))

      // The three replicas hold what they measured: one asking the node's whole memory waits.
      const other = await h.model('other', { memoryBytes: 8 * 1024 ** 3 })
      const waiting = (await h.manager.deploy(other)).deployment
      assert.equal(waiting.status.reason, 'insufficient_memory')
      await h.manager.undeploy(model)
      assert.equal((await h.manager.waitUntilSettled(other, 5000)).status.state, 'deployed')
      await eventually(() => pids.every(isGone))
    } finally {
      await h.close()
    }
  })

  it('fails at once a replica set the node can never hold', async () => {
    const h = await deploymentHarness({ mode: 'echo', node: { cpus: 2, cpuOvercommit: 1 } })
    try {
      const model = await h.model('too-many', { numCpus: 1 }, 3)
      await h.manager.deploy(model)
      const settled = await h.manager.waitUntilSettled(model, 1000)
      assert.equal(settled.status.state, 'failed')
      assert.equal(settled.status.reason, 'never_fits')
      assert.match(settled.message ?? '', /3 CPUs \(3 replicas\); this node has 2/)
      assert.deepEqual(await h.pids(), [])
    } finally {
      await h.close()
    }
  })

  it('keeps serving on the other replicas while a crashed one restarts', async () => {
    const h = await deploymentHarness({ mode: 'echo', maxRestarts: 2 })
    try {
      const model = await h.model('sturdy', {}, 2)
      await h.manager.deploy(model)
      assert.equal((await h.manager.waitUntilSettled(model, 5000)).status.state, 'deployed')
      const victim = h.runnerOf(model)
      process.kill(Number(victim.id), 'SIGKILL')
      await eventually(() => h.manager.deploymentOf(model).status.reason === 'restarting')
      const during = h.manager.deploymentOf(model)
      assert.equal(during.status.state, 'deployed')
      assert.match(during.message ?? '', /1 of 2 replicas serving/)
      // The survivor answers meanwhile.
      assert.ok(h.manager.serving(model).pool.targets.length >= 1)
      await eventually(
        () =>
          h.manager.replicasOf(model) === 2 &&
          h.manager.deploymentOf(model).status.reason === 'ready',
      )
      assert.ok(!h.manager.serving(model).pool.targets.includes(victim))
      assert.equal((await h.recorded(model))?.status.state, 'deployed')
    } finally {
      await h.close()
    }
  })

  it('changes the number of replicas by redeploying, the new set loaded beside the old', async () => {
    const h = await deploymentHarness({ mode: 'echo', node: { cpus: 8, cpuOvercommit: 1 } })
    try {
      const model = await h.model('grows', {}, 1)
      await h.manager.deploy(model)
      await h.manager.waitUntilSettled(model, 5000)
      const before = h.runnerOf(model)
      const more = { ...model, serving: { ...model.serving, replicas: 3 } }
      await h.manager.deploy(more, { reload: true })
      await eventually(() => h.manager.replicasOf(model) === 3)
      assert.equal((await h.manager.waitUntilSettled(model, 5000)).status.state, 'deployed')
      assert.ok(!h.manager.serving(model).pool.targets.includes(before))
      await eventually(() => isGone(Number(before.id)))
      assert.equal((await h.pids()).filter((pid) => !isGone(pid)).length, 3)
    } finally {
      await h.close()
    }
  })

  it('keeps the old set serving while a bigger one waits for room, then swaps once room frees', async () => {
    // It used to stop the old runner first, and the freed capacity could go to another model
    // while this one answered 503. (GPUs are reserved whole, so room is exact here.)
    const h = await deploymentHarness({ mode: 'echo', node: { gpus: 4, cpus: 4 } })
    try {
      const model = await h.model('grows', { numGpus: 1 }, 1)
      const blocker = await h.model('blocker', { numGpus: 1 })
      for (const m of [model, blocker]) {
        await h.manager.deploy(m)
        await h.manager.waitUntilSettled(m, 5000)
      }
      const before = h.runnerOf(model)
      const more = { ...model, serving: { ...model.serving, replicas: 3 } }
      await h.manager.deploy(more, { reload: true })
      const waiting = await h.manager.waitUntilSettled(model, 5000)
      assert.deepEqual(
        [waiting.status.state, waiting.status.reason],
        ['deployed', 'insufficient_gpu'],
      )
      assert.match(waiting.message ?? '', /serve meanwhile/)
      assert.deepEqual(h.manager.serving(model).pool.targets, [before])
      await h.manager.undeploy(blocker)
      await eventually(() => h.manager.replicasOf(model) === 3)
      await eventually(() => isGone(Number(before.id)))
      assert.equal(h.manager.deploymentOf(model).status.reason, 'ready')
    } finally {
      await h.close()
    }
  })
})
