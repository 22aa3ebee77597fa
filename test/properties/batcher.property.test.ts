import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { Batcher, type BatchTarget } from '../../src/inference/batcher.js'
import { RunnerPool } from '../../src/inference/runner-pool.js'
import type { WireTensor } from '../../src/tensors/tensor.js'
import { runs } from './property-helpers.js'

/**
 * The batcher concatenates queued requests along their first dimension, runs them once and
 * splits the outputs back. Whatever the arrival order, shapes, batch size, runners, in-flight
 * limit, queue delay and order in which runners answer: every request is answered exactly
 * once, with exactly its own rows; a failed batch fails exactly its members.
 */

/** Requests of one family share names, datatypes, trailing dims and outputs asked for. */
interface Family {
  readonly width: number
  readonly withMask: boolean
  readonly outputs: readonly string[] | null
}

interface Request {
  readonly family: number
  readonly rows: number
  readonly canBatch: boolean
  /** A batch holding a poisoned request fails, as a runner's error would fail it. */
  readonly poisoned: boolean
}

const family: fc.Arbitrary<Family> = fc.record({
  width: fc.integer({ min: 2, max: 4 }),
  withMask: fc.boolean(),
  outputs: fc.constantFrom(null, ['y'], ['z', 'y']),
})

const request: fc.Arbitrary<Request> = fc.record({
  family: fc.nat(2),
  rows: fc.oneof(
    { weight: 6, arbitrary: fc.constant(1) },
    { weight: 4, arbitrary: fc.integer({ min: 2, max: 4 }) },
    { weight: 1, arbitrary: fc.constant(0) },
  ),
  canBatch: fc.oneof(
    { weight: 4, arbitrary: fc.constant(true) },
    { weight: 1, arbitrary: fc.constant(false) },
  ),
  poisoned: fc.oneof(
    { weight: 12, arbitrary: fc.constant(false) },
    { weight: 1, arbitrary: fc.constant(true) },
  ),
})

const setup = fc.record({
  families: fc.tuple(family, family, family),
  requests: fc.array(request, { minLength: 1, maxLength: 24 }),
  maxBatchSize: fc.integer({ min: 1, max: 16 }),
  maxInFlight: fc.integer({ min: 1, max: 3 }),
  maxQueueDelayUs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2000 })),
  runners: fc.integer({ min: 1, max: 3 }),
  /** Which runners the pool holds after each change (a restart, a replica lost); then all. */
  poolChanges: fc.array(fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }), { maxLength: 4 }),
})

const f32 = (shape: readonly number[], values: readonly number[]): WireTensor => ({
  name: 'x',
  datatype: 'FP32',
  shape,
  data: new Uint8Array(Float32Array.from(values).buffer),
})
const floats = (t: WireTensor) => Array.from(new Float32Array(Uint8Array.from(t.data).buffer))
const ints = (t: WireTensor) => Array.from(new Int32Array(Uint8Array.from(t.data).buffer))

/**
 * Request `id`'s inputs: each row of `x` is `[id, row, row, …]`, and `mask` (when the family has
 * it) repeats the row's tag, so a runner can tell whether the rows of its inputs stayed aligned.
 */
function inputsOf(id: number, r: Request, f: Family): WireTensor[] {
  const x = f32(
    [r.rows, f.width],
    Array.from({ length: r.rows }, (_, row) => [id, row, ...Array(f.width - 2).fill(row)]).flat(),
  )
  if (!f.withMask) return [x]
  const mask = Int32Array.from({ length: r.rows }, (_, row) => id * 100 + row)
  return [
    x,
    { name: 'mask', datatype: 'INT32', shape: [r.rows], data: new Uint8Array(mask.buffer) },
  ]
}

/**
 * What the model answers per row: `y` = `[id, row, width]` (FP32, another width than the input)
 * and `z` = `id * 100 + row` (INT32); the outputs asked for, or both.
 */
function outputsFor(x: WireTensor, outputs: readonly string[] | null): WireTensor[] {
  const values = floats(x)
  const width = x.shape[1] as number
  const rows = x.shape[0] as number
  const y: WireTensor = {
    name: 'y',
    datatype: 'FP32',
    shape: [rows, 3],
    data: new Uint8Array(
      Float32Array.from(
        Array.from({ length: rows }, (_, i) => [
          values[i * width] as number,
          values[i * width + 1] as number,
          width,
        ]).flat(),
      ).buffer,
    ),
  }
  const z: WireTensor = {
    name: 'z',
    datatype: 'INT32',
    shape: [rows],
    data: new Uint8Array(
      Int32Array.from(
        { length: rows },
        (_, i) => (values[i * width] as number) * 100 + (values[i * width + 1] as number),
      ).buffer,
    ),
  }
  const all = { y, z }
  return (outputs ?? ['y', 'z']).map((name) => all[name as 'y' | 'z'])
}

/** Every output a request must get, computed from its own inputs alone. */
function expectedOutputs(id: number, r: Request, f: Family) {
  return outputsFor(inputsOf(id, r, f)[0] as WireTensor, f.outputs).map((t) => ({
    name: t.name,
    shape: t.shape,
    values: t.datatype === 'FP32' ? floats(t) : ints(t),
  }))
}

describe('batcher properties', () => {
  it('answers every request exactly once with exactly its rows, whatever the interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), setup, async (s, config) => {
        const { families, requests } = config
        /** Every row each runner call saw, as `id:row`. */
        const seen: string[] = []
        const inFlight = new Map<number, number>()
        const starts = new Map<number, number>()
        let batched = 0
        let calls = 0
        const runner = (index: number): BatchTarget => ({
          infer: async (inputs, outputs) => {
            const call = calls++
            const running = (inFlight.get(index) ?? 0) + 1
            inFlight.set(index, running)
            assert.ok(running <= config.maxInFlight, `runner ${index} has ${running} calls`)
            const [x, mask] = inputs as [WireTensor, WireTensor | undefined]
            const rows = x.shape[0] as number
            assert.ok(
              inputs.every((t) => t.shape[0] === rows),
              'inputs disagree on rows',
            )
            const tags = Array.from({ length: rows }, (_, i) => {
              const values = floats(x).slice(i * (x.shape[1] as number))
              return [values[0] as number, values[1] as number] as const
            })
            if (mask !== undefined) {
              assert.deepEqual(
                ints(mask),
                tags.map(([id, row]) => id * 100 + row),
                'rows misaligned',
              )
            }
            const ids = new Set(tags.map(([id]) => id))
            seen.push(...tags.map(([id, row]) => `${id}:${row}`))
            if (ids.size > 1) {
              assert.ok(rows <= config.maxBatchSize, `a batch of ${rows} rows`)
              for (const id of ids)
                assert.ok((requests[id] as Request).canBatch, `${id} was batched`)
            }
            try {
              const answer = outputsFor(x, outputs)
              await s.schedule(Promise.resolve(), `runner ${index} answers call ${call}`)
              if ([...ids].some((id) => (requests[id] as Request).poisoned))
                throw new CallFailed(call, ids)
              return answer
            } finally {
              inFlight.set(index, (inFlight.get(index) ?? 1) - 1)
            }
          },
        })
        const pool = new RunnerPool<BatchTarget>()
        const runners = Array.from({ length: config.runners }, (_, i) => runner(i))
        pool.set(runners)
        s.scheduleSequence(
          [...config.poolChanges, [true, true, true]].map((kept, i) => ({
            label: `pool change ${i}: ${kept}`,
            builder: async () => pool.set(runners.filter((_, k) => kept[k])),
          })),
        )
        const batcher = new Batcher(pool, {
          maxBatchSize: config.maxBatchSize,
          maxInFlight: config.maxInFlight,
          maxQueueDelayUs: config.maxQueueDelayUs,
          onBatch: (n) => {
            batched += n
          },
        })
        const answers: Promise<WireTensor[]>[] = []
        const arrivals = s.scheduleSequence(
          requests.map((r, id) => ({
            label: `request ${id} arrives`,
            builder: async () => {
              const f = families[r.family] as Family
              answers.push(
                batcher.run(inputsOf(id, r, f), f.outputs, performance.now() + 60_000, {
                  canBatch: r.canBatch,
                  onStart: () => starts.set(id, (starts.get(id) ?? 0) + 1),
                }),
              )
            },
          })),
        )
        let settled: PromiseSettledResult<WireTensor[]>[] | undefined
        void arrivals.task.then(async () => {
          settled = await Promise.allSettled(answers)
        })
        // Runner answers come in the scheduler's order; the batcher's queue delay is real time.
        const giveUp = performance.now() + 2000
        while (settled === undefined) {
          assert.ok(performance.now() < giveUp, `${answers.length} requests, not all answered`)
          if (s.count() > 0) await s.waitNext(1)
          else await new Promise((resolve) => setTimeout(resolve, 1))
        }

        // Each row ran exactly once, and each request started exactly once.
        const rows = requests.flatMap((r, id) =>
          Array.from({ length: r.rows }, (_, row) => `${id}:${row}`),
        )
        assert.deepEqual([...seen].sort(), rows.sort())
        assert.deepEqual(
          requests.map((_, id) => starts.get(id)),
          requests.map(() => 1),
        )
        assert.equal(batched, requests.length)
        assert.equal(batcher.outstanding, 0)
        settled.forEach((result, id) => {
          const r = requests[id] as Request
          if (result.status === 'rejected') {
            // Failed only with the error of the one call that held its rows, a poisoned one.
            assert.ok(result.reason instanceof CallFailed, String(result.reason))
            assert.ok(
              result.reason.ids.has(id),
              `request ${id} got call ${result.reason.call}'s error`,
            )
            return
          }
          assert.ok(!r.poisoned || r.rows === 0, `poisoned request ${id} succeeded`)
          assert.deepEqual(
            result.value.map((t) => ({
              name: t.name,
              shape: t.shape,
              values: t.datatype === 'FP32' ? floats(t) : ints(t),
            })),
            expectedOutputs(id, r, families[r.family] as Family),
          )
        })
      }),
      runs(200, 10_000),
    )
  })
})

/** A runner's failure of one call, naming the requests whose rows it held. */
class CallFailed extends Error {
  readonly call: number
  readonly ids: ReadonlySet<number>

  constructor(call: number, ids: ReadonlySet<number>) {
    super(`call ${call} failed`)
    this.call = call
    this.ids = ids
  }
}
