import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isRefusal, type Scheduler } from '../../src/scheduler/scheduler.js'
import { eventually } from '../helpers/processes.js'
import { deploymentHarness } from './deployment-harness.js'

const GIB = 1024 ** 3

/** Whether nothing is reserved on the 2-CPU, 4 GiB node: a reservation of all of it fits. */
function wholeNodeFree(scheduler: Pick<Scheduler, 'reserve'>): boolean {
  const all = scheduler.reserve({ numCpus: 2, numGpus: 0, memoryBytes: 4 * GIB }, 1)
  if (isRefusal(all)) return false
  all.release()
  return true
}

/**
 * Two clients alternating deploy and undeploy on one model must leave no capacity reserved once
 * it rests: every reservation is released on every path (the race once leaked a CPU a round).
 */
describe('reservations under deploy/undeploy races', () => {
  it('leaves the whole node free once the model rests, whatever the interleaving', async () => {
    const h = await deploymentHarness({ mode: 'echo', node: { cpus: 2, memoryBytes: 4 * GIB } })
    try {
      const model = await h.model('raced', { numCpus: 1, memoryBytes: 1 * GIB })
      const client = async (first: 'deploy' | 'undeploy') => {
        for (let round = 0; round < 6; round++) {
          const deploy = (round % 2 === 0) === (first === 'deploy')
          if (deploy) await h.manager.deploy(model, { reload: round % 3 === 0 })
          else await h.manager.undeploy(model)
        }
      }
      await Promise.all([client('deploy'), client('undeploy'), client('deploy')])
      await h.manager.undeploy(model)
      assert.equal(h.manager.deploymentOf(model).status.state, 'not_deployed')
      // The node holds nothing: a reservation of all of it fits.
      await eventually(() => wholeNodeFree(h.scheduler))
      // And the model deploys again on it, with a real runner (on a starved machine every runner
      // of the race may have been stopped before it wrote its pid: that is no proof either way).
      await h.manager.deploy(model)
      await eventually(() => h.manager.deploymentOf(model).status.state === 'deployed')
      assert.ok((await h.pids()).length >= 1)
      await h.manager.undeploy(model)
      await eventually(() => wholeNodeFree(h.scheduler))
    } finally {
      await h.close()
    }
  })

  it('releases what a deploy admitted while an overtaken start still ran out', async () => {
    // deploy, undeploy, deploy, undeploy, asked at once: the second deploy was admitted while
    // the first one's runner was still starting (and stopping itself), and once stayed pending
    // with its reservation, which the last undeploy then never released.
    const h = await deploymentHarness({ mode: 'echo', node: { cpus: 2, memoryBytes: 4 * GIB } })
    try {
      const model = await h.model('overtaken', { numCpus: 1, memoryBytes: 1 * GIB })
      const asked = [
        h.manager.deploy(model),
        h.manager.undeploy(model),
        h.manager.deploy(model),
        h.manager.undeploy(model),
      ]
      // The first deploy was admitted: its capacity is held (the rest wait their turn).
      await asked[0]
      assert.equal(wholeNodeFree(h.scheduler), false)
      await Promise.all(asked)
      assert.equal(h.manager.deploymentOf(model).status.state, 'not_deployed')
      await eventually(() => wholeNodeFree(h.scheduler))
    } finally {
      await h.close()
    }
  })
})
