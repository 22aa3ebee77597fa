import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isBerthError } from '../errors/berth-error.js'
import type { WireTensor } from '../tensors/tensor.js'
import { Batcher, type BatchTarget } from './batcher.js'
import { RunnerPool } from './runner-pool.js'

const f32 = (rows: number[][]): WireTensor => ({
  name: 'x',
  datatype: 'FP32',
  shape: [rows.length, rows[0]?.length ?? 0],
  data: new Uint8Array(Float32Array.from(rows.flat()).buffer),
})
const values = (t: WireTensor | undefined) =>
  Array.from(new Float32Array(Uint8Array.from(t?.data ?? []).buffer))

/**
 * A runner stand-in that doubles its input row by row, records every call, and holds each call
 * until released, so tests decide when the "runner" is busy.
 */
function doubler() {
  const calls: number[][] = []
  const held: Array<() => void> = []
  const target: BatchTarget = {
    infer: (inputs) => {
      const [x] = inputs as [WireTensor]
      calls.push([...x.shape])
      return new Promise((resolve) => {
        held.push(() =>
          resolve([
            {
              ...x,
              name: 'y',
              data: new Uint8Array(Float32Array.from(values(x).map((v) => v * 2)).buffer),
            },
          ]),
        )
      })
    },
  }
  const releaseAll = async () => {
    while (held.length > 0) {
      held.shift()?.()
      await new Promise((r) => setImmediate(r))
    }
  }
  return { target, calls, releaseAll }
}

function poolOf(...targets: BatchTarget[]): RunnerPool<BatchTarget> {
  const pool = new RunnerPool<BatchTarget>()
  pool.set(targets)
  return pool
}

describe('dynamic batching', () => {
  const far = () => performance.now() + 10_000

  it('joins requests queued behind a busy runner, and splits the answers back by rows', async () => {
    const { target, calls, releaseAll } = doubler()
    const batcher = new Batcher(poolOf(target), { maxBatchSize: 32, maxInFlight: 1 })
    const requests = [
      [[1, 2]],
      [
        [3, 4],
        [5, 6],
      ],
      [[7, 8]],
      [[9, 10]],
    ]
    const answers = requests.map((rows) =>
      batcher.run([f32(rows)], null, far(), { canBatch: true }),
    )
    await releaseAll()
    const results = await Promise.all(answers)
    // The first ran alone (the runner was free); the three behind it ran as one batch of 4 rows.
    assert.deepEqual(calls, [
      [1, 2],
      [4, 2],
    ])
    results.forEach((outputs, i) => {
      const rows = requests[i] as number[][]
      assert.deepEqual(outputs[0]?.shape, [rows.length, 2])
      assert.deepEqual(
        values(outputs[0]),
        rows.flat().map((v) => v * 2),
      )
    })
  })

  it('joins requests only while their bytes fit maxBatchBytes', async () => {
    const { target, calls, releaseAll } = doubler()
    const batcher = new Batcher(poolOf(target), {
      maxBatchSize: 32,
      maxBatchBytes: 100,
      maxInFlight: 1,
    })
    // The first runs at once; the next five wait: 40 + 40 fit, a third would not.
    const answers = [1, 2, 3, 4, 5, 6].map((v) =>
      batcher.run([f32([[v, v]])], null, far(), { canBatch: true, bytes: 40 }),
    )
    await releaseAll()
    await Promise.all(answers)
    assert.deepEqual(calls, [
      [1, 2],
      [2, 2],
      [2, 2],
      [1, 2],
    ])
    // Unless said, a request brings its inputs' bytes (8 per row here).
    const small = new Batcher(poolOf(target), {
      maxBatchSize: 32,
      maxBatchBytes: 16,
      maxInFlight: 1,
    })
    calls.length = 0
    const more = [1, 2, 3, 4].map((v) =>
      small.run([f32([[v, v]])], null, far(), { canBatch: true }),
    )
    await releaseAll()
    await Promise.all(more)
    assert.deepEqual(calls, [
      [1, 2],
      [2, 2],
      [1, 2],
    ])
  })

  it('sends nothing to a runner that failed: requests wait for the runners to change', async () => {
    const { target, calls, releaseAll } = doubler()
    const failed: BatchTarget = {
      failed: true,
      infer: () => Promise.reject(new Error('sent to a failed runner')),
    }
    const pool = poolOf(failed)
    const batcher = new Batcher(pool, { maxBatchSize: 1, maxInFlight: 2 })
    const answer = batcher.run([f32([[1, 2]])], null, far(), { canBatch: false })
    await new Promise((r) => setTimeout(r, 20))
    assert.deepEqual(calls, [])
    // Its replacement comes: the request runs there.
    pool.set([target])
    await releaseAll()
    assert.deepEqual(values((await answer)[0]), [2, 4])
    assert.deepEqual(calls, [[1, 2]])
  })

  it('holds a request that finds the runner free for its queue delay, for company', async () => {
    const { target, calls, releaseAll } = doubler()
    const batcher = new Batcher(poolOf(target), {
      maxBatchSize: 4,
      maxInFlight: 2,
      maxQueueDelayUs: 30_000,
    })
    const first = batcher.run([f32([[1, 1]])], null, far(), { canBatch: true })
    await new Promise((r) => setTimeout(r, 5))
    const second = batcher.run([f32([[2, 2]])], null, far(), { canBatch: true })
    await new Promise((r) => setTimeout(r, 60))
    await releaseAll()
    await Promise.all([first, second])
    assert.deepEqual(calls, [[2, 2]])
    // A full batch does not wait.
    const full = batcher.run(
      [
        f32([
          [1, 1],
          [2, 2],
          [3, 3],
          [4, 4],
        ]),
      ],
      null,
      far(),
      { canBatch: true },
    )
    await new Promise((r) => setTimeout(r, 1))
    assert.deepEqual(calls.at(-1), [4, 2])
    await releaseAll()
    await full
  })

  it('keeps apart what cannot be joined: other shapes, over the batch size, or not batchable', async () => {
    const { target, calls, releaseAll } = doubler()
    const batcher = new Batcher(poolOf(target), { maxBatchSize: 3, maxInFlight: 1 })
    const run = (rows: number[][], canBatch = true) =>
      batcher.run([f32(rows)], null, far(), { canBatch })
    const answers = [
      run([[0, 0]]),
      run([
        [1, 1],
        [1, 1],
      ]),
      run([[2, 2, 2]]),
      run([[3, 3]]),
      run([[4, 4]]),
      run([[5, 5]], false),
    ]
    await releaseAll()
    await Promise.all(answers)
    assert.deepEqual(calls, [
      [1, 2],
      [3, 2], // [[1,1],[1,1]] + [[3,3]]: 3 rows, the batch size
      [1, 3],
      [1, 2],
      [1, 2],
    ])
  })

  it('joins only requests that agree on input names, datatypes and the outputs asked for', async () => {
    const { target, calls, releaseAll } = doubler()
    const batcher = new Batcher(poolOf(target), { maxBatchSize: 8, maxInFlight: 1 })
    const run = (tensor: WireTensor, outputs: string[] | null = null) =>
      batcher.run([tensor], outputs, far(), { canBatch: true })
    const row = f32([[1, 1]])
    const answers = [
      run(row), // runs at once; the rest queue behind it
      run({ ...row, name: 'z' }),
      run(row, ['y']),
      run({ ...row, datatype: 'INT32' }),
      run(row),
      run(row, ['y']),
    ]
    await releaseAll()
    await Promise.all(answers)
    assert.deepEqual(calls, [
      [1, 2],
      [1, 2], // input named z: alone
      [2, 2], // outputs ['y']: with the other that asks for them
      [1, 2], // INT32: alone
      [1, 2], // the last plain request
    ])
  })

  it('sends a runner busy with a batch a second one only once that one is full', async () => {
    const { target, calls, releaseAll } = doubler()
    const batcher = new Batcher(poolOf(target), { maxBatchSize: 3, maxInFlight: 2 })
    const run = (v: number, canBatch = true) =>
      batcher.run([f32([[v, v]])], null, far(), { canBatch })
    const tick = () => new Promise((r) => setImmediate(r))
    const answers = [run(1), run(2), run(3)]
    await tick()
    // The first ran at once; two more wait for company while the runner is busy.
    assert.deepEqual(calls, [[1, 2]])
    answers.push(run(4))
    await tick()
    // Three rows queued: a full batch goes to the busy runner at once, as its second call.
    assert.deepEqual(calls, [
      [1, 2],
      [3, 2],
    ])
    // Once the runner is idle, what is queued runs, batched or not.
    answers.push(run(5), run(6, false))
    await releaseAll()
    await Promise.all(answers)
    assert.deepEqual(calls, [
      [1, 2],
      [3, 2],
      [1, 2],
      [1, 2],
    ])
  })

  it('fails every request of a batch the model answered wrongly, and times out the queued', async () => {
    const target: BatchTarget = {
      infer: async (inputs) => [{ ...(inputs[0] as WireTensor), shape: [1, 2] }],
    }
    const batcher = new Batcher(poolOf(target), { maxBatchSize: 32, maxInFlight: 1 })
    const slow = new Batcher(poolOf({ infer: () => new Promise(() => undefined) }), {
      maxBatchSize: 32,
      maxInFlight: 1,
    })
    void slow.run([f32([[1, 1]])], null, far(), { canBatch: true })
    await assert.rejects(
      slow.run([f32([[1, 1]])], null, performance.now() + 20, { canBatch: true }),
      (err) => isBerthError(err, 'inference_timeout'),
    )
    const first = batcher.run([f32([[1, 1]])], null, far(), { canBatch: true })
    const joined = [
      batcher.run([f32([[1, 1]])], null, far(), { canBatch: true }),
      batcher.run([f32([[2, 2]])], null, far(), { canBatch: true }),
    ]
    await first
    for (const answer of joined) {
      await assert.rejects(answer, (err) => isBerthError(err, 'inference_failed'))
    }
  })

  it('tells how the queue length changes: nothing for a request run at once', async () => {
    const { target, releaseAll } = doubler()
    // The lengths the changes add up to.
    const told: number[] = []
    const batcher = new Batcher(poolOf(target), {
      maxBatchSize: 1,
      maxInFlight: 1,
      onQueueChange: (delta) => told.push((told.at(-1) ?? 0) + delta),
    })
    const run = () => batcher.run([f32([[1, 1]])], null, far(), { canBatch: true })
    const answers = [run()]
    assert.equal(told.length, 0, 'the runner was free: nothing waited')
    answers.push(run(), run())
    assert.deepEqual(told, [1, 2])
    await releaseAll()
    await Promise.all(answers)
    assert.deepEqual(told, [1, 2, 1, 0])

    // A request that times out in the queue leaves it too.
    const stuck = new Batcher(poolOf({ infer: () => new Promise(() => undefined) }), {
      maxBatchSize: 1,
      maxInFlight: 1,
      onQueueChange: (delta) => told.push((told.at(-1) ?? 0) + delta),
    })
    told.length = 0
    void stuck.run([f32([[1, 1]])], null, far(), { canBatch: true })
    await assert.rejects(
      stuck.run([f32([[1, 1]])], null, performance.now() + 20, { canBatch: true }),
      (err) => isBerthError(err, 'inference_timeout'),
    )
    assert.deepEqual(told, [1, 0])
  })

  it('sends each batch to the replica with the fewest calls outstanding', async () => {
    const a = doubler()
    const b = doubler()
    const batcher = new Batcher(poolOf(a.target, b.target), { maxBatchSize: 1, maxInFlight: 2 })
    const answers = [1, 2, 3, 4].map((v) =>
      batcher.run([f32([[v, v]])], null, far(), { canBatch: true }),
    )
    await new Promise((r) => setImmediate(r))
    // Two each, alternating; the fifth waits for whichever frees first.
    assert.equal(a.calls.length, 2)
    assert.equal(b.calls.length, 2)
    const fifth = batcher.run([f32([[5, 5]])], null, far(), { canBatch: true })
    assert.equal(batcher.outstanding, 5)
    await b.releaseAll()
    await new Promise((r) => setImmediate(r))
    assert.equal(b.calls.length, 3)
    await b.releaseAll()
    await a.releaseAll()
    assert.deepEqual(
      (await Promise.all([...answers, fifth])).map((o) => values(o[0])),
      [
        [2, 2],
        [4, 4],
        [6, 6],
        [8, 8],
        [10, 10],
      ],
    )
    assert.equal(batcher.outstanding, 0)
  })

  it('holds queued requests while no runner is there, and runs them on the one that comes', async () => {
    const pool = new RunnerPool<BatchTarget>()
    const batcher = new Batcher(pool, { maxBatchSize: 32, maxInFlight: 1 })
    const answer = batcher.run([f32([[1, 2]])], null, far(), { canBatch: true })
    await new Promise((r) => setTimeout(r, 20))
    const { target, releaseAll } = doubler()
    pool.set([target])
    await releaseAll()
    assert.deepEqual(values((await answer)[0]), [2, 4])
  })

  it('refuses a request at once with queue_full past maxQueueSize, and takes them again once it drains', async () => {
    const { target, calls, releaseAll } = doubler()
    const batcher = new Batcher(poolOf(target), {
      maxBatchSize: 1,
      maxInFlight: 1,
      maxQueueSize: 2,
    })
    // One runs, two wait: the queue is full (the running one does not count).
    const accepted = [1, 2, 3].map((v) =>
      batcher.run([f32([[v, v]])], null, far(), { canBatch: true }),
    )
    assert.equal(calls.length, 1)
    await assert.rejects(
      batcher.run([f32([[4, 4]])], null, far(), { canBatch: true }),
      (err) => isBerthError(err, 'queue_full') && err.details?.max_queue_size === 2,
    )
    // Refused, not queued: it never reaches the runner, and nothing else is lost.
    assert.equal(batcher.outstanding, 3)
    await releaseAll()
    assert.deepEqual(
      (await Promise.all(accepted)).map((o) => values(o[0])),
      [
        [2, 2],
        [4, 4],
        [6, 6],
      ],
    )
    assert.equal(calls.length, 3)
    const again = batcher.run([f32([[5, 5]])], null, far(), { canBatch: true })
    await releaseAll()
    assert.deepEqual(values((await again)[0]), [10, 10])
  })

  it('fails queued requests with the error the pool gives when no runner is coming', async () => {
    const { target } = doubler()
    const pool = poolOf(target)
    const batcher = new Batcher(pool, { maxBatchSize: 1, maxInFlight: 1 })
    void batcher.run([f32([[1, 1]])], null, far(), { canBatch: true }).catch(() => undefined)
    const queued = batcher.run([f32([[2, 2]])], null, far(), { canBatch: true })
    pool.set([], new Error('undeployed'))
    await assert.rejects(queued, /undeployed/)
  })
})
