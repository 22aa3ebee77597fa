import assert from 'node:assert/strict'
import { it } from 'node:test'
import type { NodeCapacity } from '../config/config.js'
import { followCapacity } from './container-placement.js'

const GIB = 1024 ** 3
const node = (cpus: number, memoryGb: number): NodeCapacity => ({
  cpus,
  cpuOvercommit: 4,
  memoryBytes: memoryGb * GIB,
  gpus: 0,
})

it('follows a swarm as it grows, never as it shrinks, and stops when told', async () => {
  // What the swarm says, read after read: a node joins, one is drained, the engine misses a beat.
  const reads: Array<NodeCapacity | Error> = [
    node(4, 8),
    node(8, 16),
    node(2, 4),
    new Error('engine away'),
    node(8, 32),
  ]
  // The follower's timer keeps nothing alive (a server's close need not wait for it): this does.
  const alive = setInterval(() => undefined, 1000)
  const offered: NodeCapacity[] = []
  const errors: unknown[] = []
  let stop: () => void = () => undefined
  const done = new Promise<void>((resolve) => {
    stop = followCapacity(
      async () => {
        const next = reads.shift()
        if (next === undefined) {
          resolve()
          return new Promise<NodeCapacity>(() => undefined)
        }
        if (next instanceof Error) throw next
        return next
      },
      { resize: (n) => offered.push(n) },
      node(4, 8),
      { intervalMs: 5, log: (err) => errors.push(err) },
    )
  })
  await done
  stop()
  clearInterval(alive)
  const count = offered.length
  await new Promise((resolve) => setTimeout(resolve, 30).ref())
  assert.equal(offered.length, count, 'no read after the stop')
  assert.deepEqual(
    offered.slice(0, 4).map((n) => [n.cpus, n.memoryBytes / GIB]),
    [
      [4, 8],
      [8, 16],
      [8, 16],
      [8, 32],
    ],
  )
  assert.equal(errors.length, 1)
})

it('says what failed, and reads again, when the engine or the admission throws', async () => {
  const alive = setInterval(() => undefined, 1000)
  const errors: unknown[] = []
  let reads = 0
  let resizes = 0
  const stop = followCapacity(
    async () => {
      reads += 1
      return node(4, 8 + reads)
    },
    {
      resize: () => {
        resizes += 1
        // Admitting what now fits fails: said, not a crash of the process.
        throw new Error('admission failed')
      },
    },
    node(4, 8),
    { intervalMs: 5, log: (err) => errors.push(err) },
  )
  await new Promise((resolve) => setTimeout(resolve, 60))
  stop()
  clearInterval(alive)
  assert.ok(resizes >= 2, `resized ${resizes} times`)
  assert.ok(errors.length >= 2 && errors.every((e) => (e as Error).message === 'admission failed'))
})
