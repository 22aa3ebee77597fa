import assert from 'node:assert/strict'
import { it } from 'node:test'
import fc from 'fast-check'
import type { Model } from '../../src/domain/model.js'
import { isRefusal, type Scheduler } from '../../src/scheduler/scheduler.js'
import { deploymentHarness } from '../deployments/deployment-harness.js'
import { eventually, isGone } from '../helpers/processes.js'
import { runs } from './property-helpers.js'

const GIB = 1024 ** 3

/** What a client (or the machine) does to one of the models. */
type Op =
  | {
      readonly kind: 'deploy' | 'redeploy' | 'undeploy' | 'remove' | 'crash'
      readonly model: number
    }
  | { readonly kind: 'pause' }

const onModel = (kind: Exclude<Op['kind'], 'pause'>) =>
  fc.record({ kind: fc.constant(kind), model: fc.integer({ min: 0, max: 2 }) })
const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: onModel('deploy'), weight: 3 },
  { arbitrary: onModel('redeploy'), weight: 2 },
  { arbitrary: onModel('undeploy'), weight: 2 },
  { arbitrary: onModel('remove'), weight: 1 },
  { arbitrary: onModel('crash'), weight: 4 },
  { arbitrary: fc.constant({ kind: 'pause' as const }), weight: 1 },
)

/** Ops asked at once form a round; rounds follow one another. */
const rounds = fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), {
  minLength: 2,
  maxLength: 5,
})

/** Whether nothing is reserved on the 2-CPU, 4 GiB node: a reservation of all of it fits. */
function wholeNodeFree(scheduler: Pick<Scheduler, 'reserve'>): boolean {
  const all = scheduler.reserve({ numCpus: 2, numGpus: 0, memoryBytes: 4 * GIB }, 1)
  if (isRefusal(all)) return false
  all.release()
  return true
}

/**
 * Random interleavings of deploy, redeploy, undeploy, delete and runner crashes on three models
 * competing for a node that fits two runners: the reservation invariant (every reservation has
 * one owner; capacity is held exactly while runners run or start in it) holds at every moment it
 * is sampled, each model ends in the state its last request asked for, and once all rest the
 * whole node is free and no runner process is left.
 */
it('reservations never leak, whatever deploys, undeploys, deletes and crashes interleave', async () => {
  await fc.assert(
    // No restart (a crash fails the deployment) or one (the next crash does).
    fc.asyncProperty(rounds, fc.constantFrom(0, 1), async (plan, maxRestarts) => {
      const h = await deploymentHarness({
        mode: 'echo',
        node: { cpus: 2, memoryBytes: 4 * GIB },
        maxRestarts,
      })
      const violations: string[] = []
      let pids: number[] = []
      const sample = setInterval(() => {
        const { unowned, misheld } = h.manager.auditReservations()
        if (unowned > 0) violations.push(`${unowned} unowned reservation(s)`)
        violations.push(...misheld)
      }, 3)
      try {
        const models: Model[] = [
          await h.model('m0', { numCpus: 1, memoryBytes: 1 * GIB }),
          await h.model('m1', { numCpus: 1, memoryBytes: 1 * GIB }, 2),
          await h.model('m2', { numCpus: 2, memoryBytes: 1 * GIB }),
        ]
        const wanted = models.map(() => 'not_deployed')
        const act = async (o: Op): Promise<void> => {
          if (o.kind === 'pause') return new Promise((resolve) => setTimeout(resolve, 30))
          const model = models[o.model] as Model
          switch (o.kind) {
            case 'deploy':
            case 'redeploy':
              wanted[o.model] = 'deployed'
              await h.manager.deploy(model, { reload: o.kind === 'redeploy' })
              return
            case 'undeploy':
              wanted[o.model] = 'not_deployed'
              await h.manager.undeploy(model)
              return
            case 'remove':
              wanted[o.model] = 'not_deployed'
              await h.manager.remove(model)
              return
            case 'crash': {
              // A serving runner (waited for a moment) dies as the kernel's OOM killer would
              // end it; a crash of a model with none is a no-op.
              const serving = () => {
                try {
                  return h.manager.serving(model).pool.targets[0]
                } catch {
                  return undefined
                }
              }
              await eventually(() => serving() !== undefined, 300).catch(() => undefined)
              const runner = serving()
              if (runner !== undefined) process.kill(Number(runner.id), 'SIGKILL')
              return
            }
          }
        }
        for (const round of plan) {
          await Promise.all(round.map((o) => act(o).catch(() => undefined)))
        }
        // Each model settles where its last request asked (a crash restarts within budget; a
        // model wanted deployed may also wait for the capacity another one holds).
        for (const [i, model] of models.entries()) {
          await eventually(() => {
            const { state } = h.manager.deploymentOf(model).status
            return wanted[i] === 'deployed'
              ? ['deployed', 'pending', 'failed'].includes(state)
              : state === 'not_deployed'
          }, 10_000)
        }
        for (const model of models) await h.manager.undeploy(model)
        await eventually(() => wholeNodeFree(h.scheduler), 10_000)
        assert.deepEqual(h.manager.auditReservations(), { unowned: 0, misheld: [] })
        pids = await h.pids()
      } finally {
        clearInterval(sample)
        await h.close()
      }
      assert.deepEqual(violations, [], 'the invariant held at every sample')
      await eventually(() => pids.every(isGone), 5000)
    }),
    runs(20, 60_000),
  )
})
