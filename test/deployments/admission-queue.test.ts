import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AdmissionQueue } from '../../src/deployments/admission-queue.js'
import type { ResourceRequirements } from '../../src/domain/model.js'
import type { Refusal, Reservation } from '../../src/scheduler/scheduler.js'

/** A node of `cpus` CPUs and no GPU, admitting whole reservations. */
function node(cpus: number) {
  let free = cpus
  return {
    reserve(resources: ResourceRequirements, replicas = 1): Reservation | Refusal {
      const want = resources.numCpus * replicas
      if (resources.numGpus > 0) {
        return { reason: 'insufficient_gpu', never: true, message: 'no GPU here', short: 1 }
      }
      if (want > cpus) {
        return { reason: 'insufficient_cpu', never: true, message: 'too big', short: want - cpus }
      }
      if (want > free) {
        return { reason: 'insufficient_cpu', never: false, message: 'busy', short: want - free }
      }
      free -= want
      let released = false
      return {
        resources,
        charged: resources,
        replicas,
        recharge() {},
        release() {
          if (!released) free += want
          released = true
        },
      }
    },
  }
}

const cpus = (numCpus: number, numGpus = 0): ResourceRequirements => ({
  numCpus,
  numGpus,
  memoryBytes: 1,
})

describe('admission queue', () => {
  it('keeps request order; a request again goes to the back', () => {
    const queue = new AdmissionQueue<string>(node(1))
    for (const name of ['a', 'b', 'c']) queue.enqueue(name)
    queue.enqueue('a')
    assert.deepEqual(queue.waiting(), ['b', 'c', 'a'])
    queue.remove('c')
    queue.remove('c')
    assert.deepEqual(queue.waiting(), ['b', 'a'])
  })

  it('admits what fits, says what waits and what can never fit', () => {
    const queue = new AdmissionQueue<string>(node(2))
    const first = queue.reserve(cpus(1), 2)
    assert.equal(first.kind, 'admitted')
    assert.deepEqual(queue.reserve(cpus(1), 1), {
      kind: 'waits',
      reason: 'insufficient_cpu',
      message: 'busy',
      short: 1,
    })
    assert.deepEqual(queue.reserve(cpus(3), 1), {
      kind: 'never',
      reason: 'never_fits',
      message: 'too big',
    })
    assert.deepEqual(queue.reserve(cpus(1, 1), 1), {
      kind: 'never',
      reason: 'gpu_unavailable',
      message: 'no GPU here',
    })
    if (first.kind === 'admitted') first.reservation.release()
    assert.equal(queue.reserve(cpus(2), 1).kind, 'admitted')
  })
})
