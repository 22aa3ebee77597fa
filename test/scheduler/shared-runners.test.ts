import assert from 'node:assert/strict'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { RunnerRuntime } from '../../src/domain/serving-plan.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import { LocalRunner } from '../../src/scheduler/local/local-runner.js'
import { LocalScheduler, RUNNER_ENTRY } from '../../src/scheduler/local/local-scheduler.js'
import { SharedRunner } from '../../src/scheduler/local/shared-runner.js'
import { isRefusal, type Runner } from '../../src/scheduler/scheduler.js'
import { constantOfShapeModel, mlpModel, referenceMlp } from '../fixtures/onnx-models.js'
import { eventually, isGone } from '../helpers/processes.js'
import { tempDir } from '../helpers/temp-dir.js'

const MISBEHAVING = fileURLToPath(
  new URL('../fixtures/workers/misbehaving-runner.js', import.meta.url),
)
const GIB = 1024 ** 3
const MIB = 1024 ** 2
const X = Array.from({ length: 16 }, (_, i) => (i - 8) / 4)

/** The process a runner runs in. */
function pidOf(runner: Runner): number {
  const pid = runner instanceof SharedRunner || runner instanceof LocalRunner ? runner.pid : 0
  assert.ok(pid !== undefined && pid > 0)
  return pid
}

/** Runs the tiny MLP on `X` and checks the answer is that of the MLP of `seed`. */
async function assertAnswers(runner: Runner, seed: number): Promise<void> {
  const data = new Uint8Array(Float32Array.from(X).buffer)
  const [y] = await runner.infer(
    [{ name: 'x', datatype: 'FP32', shape: [1, 16], data }],
    null,
    10_000,
  )
  const got = Array.from(new Float32Array(Uint8Array.from(y?.data ?? []).buffer))
  const want = referenceMlp(X, 1, 16, 32, 4, seed)
  assert.equal(got.length, want.length)
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs((got[i] ?? Number.NaN) - (want[i] ?? 0)) < 1e-4, `seed ${seed}, output ${i}`)
  }
}

describe('shared runner processes', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  const modelFile = (seed: number) => join(dir.path, `mlp-${seed}.onnx`)
  before(async () => {
    dir = await tempDir()
    for (let seed = 1; seed <= 6; seed++)
      await writeFile(modelFile(seed), mlpModel(16, 32, 4, seed))
    await writeFile(join(dir.path, 'grows.onnx'), constantOfShapeModel())
  })
  after(() => dir.remove())

  const open = (
    options: { maxModels?: number; spareRunners?: number; runDir?: string } = {},
    command?: (runtime: RunnerRuntime) => { entry: string; args: string[] },
  ) =>
    LocalScheduler.open({
      node: { cpus: 2, cpuOvercommit: 100, memoryBytes: 64 * GIB, gpus: 0 },
      runDir: options.runDir ?? join(dir.path, `run-${Math.random()}`),
      startTimeoutMs: 10_000,
      killGraceMs: 500,
      memoryPollMs: 20,
      maxFrameBytes: 1 << 30,
      spareRunners: options.spareRunners ?? 0,
      sharing: { maxModels: options.maxModels ?? 4, maxModelBytes: 64 * MIB },
      ...(command === undefined ? {} : { command }),
    })

  /** Starts a runner for a tiny MLP of `org` (may share) and loads the MLP of `seed`. */
  const deploy = async (
    scheduler: LocalScheduler,
    org: string,
    seed: number,
    memoryBytes = GIB,
    label = `${org}/mlp-${seed}`,
  ) => {
    const reservation = scheduler.reserve({ numCpus: 0.1, memoryBytes, numGpus: 0 })
    assert.ok(!isRefusal(reservation))
    const runner = await scheduler.start(reservation, {
      runtime: 'onnx',
      label,
      organizationId: org,
      mayShare: true,
      modelBytes: 4 * 1024,
    })
    await runner.load({ path: modelFile(seed), root: dir.path }, 10_000)
    return runner
  }

  it('loads several models of one organization into one process, each answering its own outputs', async () => {
    const scheduler = await open()
    try {
      const runners = await Promise.all([1, 2, 3].map((seed) => deploy(scheduler, 'org_a', seed)))
      assert.ok(runners.every((r) => r instanceof SharedRunner))
      assert.equal(new Set(runners.map(pidOf)).size, 1)
      for (const [i, runner] of runners.entries()) await assertAnswers(runner, i + 1)
      // Each model's resident share is measured and the shares add up to the process.
      for (const runner of runners) assert.ok((runner.residentBytes() ?? 0) > 0)
    } finally {
      await scheduler.close()
    }
  })

  it('never puts two organizations in one process', async () => {
    const scheduler = await open()
    try {
      const [a1, b1, a2, b2] = await Promise.all([
        deploy(scheduler, 'org_a', 1),
        deploy(scheduler, 'org_b', 2),
        deploy(scheduler, 'org_a', 3),
        deploy(scheduler, 'org_b', 4),
      ])
      assert.ok(a1 && b1 && a2 && b2)
      assert.equal(pidOf(a1), pidOf(a2))
      assert.equal(pidOf(b1), pidOf(b2))
      assert.notEqual(pidOf(a1), pidOf(b1))
      await assertAnswers(b2, 4)
      await assertAnswers(a1, 1)
    } finally {
      await scheduler.close()
    }
  })

  it('opens a new process past the per-process model limit, and never shares between replicas', async () => {
    const scheduler = await open({ maxModels: 2 })
    try {
      const first = await deploy(scheduler, 'org_a', 1)
      const second = await deploy(scheduler, 'org_a', 2)
      const third = await deploy(scheduler, 'org_a', 3)
      assert.equal(pidOf(first), pidOf(second))
      assert.notEqual(pidOf(third), pidOf(first))
      // A second replica of model 3 would only queue behind the first in one process.
      const replica = await deploy(scheduler, 'org_a', 3)
      assert.notEqual(pidOf(replica), pidOf(third))
      await assertAnswers(third, 3)
      await assertAnswers(replica, 3)
    } finally {
      await scheduler.close()
    }
  })

  it('unloads one model and leaves the others serving; the process ends with its last model', async () => {
    const scheduler = await open()
    try {
      const [one, two] = await Promise.all([
        deploy(scheduler, 'org_a', 1),
        deploy(scheduler, 'org_a', 2),
      ])
      assert.ok(one && two)
      const pid = pidOf(one)
      await one.stop(1000)
      assert.deepEqual(await one.ended, { cause: 'stopped', message: 'the runner was stopped' })
      assert.ok(!isGone(pid))
      await assertAnswers(two, 2)
      await assert.rejects(assertAnswers(one, 1))
      await two.stop(1000)
      assert.equal((await two.ended).cause, 'stopped')
      assert.ok(isGone(pid))
    } finally {
      await scheduler.close()
    }
  })

  it('ends every hosted model as crashed when the process is killed, and a new start works', async () => {
    const scheduler = await open()
    try {
      const runners = await Promise.all([1, 2, 3].map((seed) => deploy(scheduler, 'org_a', seed)))
      const pid = pidOf(runners[0] as Runner)
      process.kill(pid, 'SIGKILL')
      const ends = await Promise.all(runners.map((r) => r.ended))
      assert.deepEqual(
        ends.map((e) => e.cause),
        ['crashed', 'crashed', 'crashed'],
      )
      assert.ok(runners.every((r) => r.failed))
      const again = await deploy(scheduler, 'org_a', 1)
      assert.notEqual(pidOf(again), pid)
      await assertAnswers(again, 1)
    } finally {
      await scheduler.close()
    }
  })

  it('moves a model that outgrows its own memory to a process of its own; its neighbours serve on', async () => {
    const scheduler = await open()
    try {
      const neighbours = await Promise.all([1, 2].map((seed) => deploy(scheduler, 'org_a', seed)))
      const reservation = scheduler.reserve({ numCpus: 0.1, memoryBytes: 16 * MIB, numGpus: 0 })
      assert.ok(!isRefusal(reservation))
      const spec = {
        runtime: 'onnx' as const,
        label: 'org_a/grows',
        organizationId: 'org_a',
        mayShare: true,
        modelBytes: 1024,
      }
      const greedy = await scheduler.start(reservation, spec)
      await greedy.load({ path: join(dir.path, 'grows.onnx'), root: dir.path }, 10_000)
      const pid = pidOf(greedy)
      assert.equal(pidOf(neighbours[0] as Runner), pid)
      // 32 M floats: 128 MiB of output, eight times the model's memory_gb.
      const shape = new Uint8Array(new BigInt64Array([32n * 1024n * 1024n]).buffer)
      await greedy
        .infer([{ name: 'shape', datatype: 'INT64', shape: [1], data: shape }], null, 20_000)
        .catch((err: unknown) => assert.ok(isBerthError(err)))
      const end = await greedy.ended
      assert.equal(end.cause, 'moved')
      assert.ok(!isGone(pid))
      for (const [i, runner] of neighbours.entries()) {
        assert.equal(runner.failed, false)
        await assertAnswers(runner, i + 1)
      }
      // Its next start gets a process of its own.
      const moved = await scheduler.start(reservation, spec)
      assert.ok(moved instanceof LocalRunner)
      assert.notEqual(pidOf(moved), pid)
    } finally {
      await scheduler.close()
    }
  })

  it('kills a process that a moving model keeps growing: it ends request_out_of_memory, its neighbours crashed', async () => {
    // A runner whose inference allocates until it is killed (up to 3 GiB).
    const scheduler = await open({}, () => ({ entry: MISBEHAVING, args: ['memory-on-infer'] }))
    try {
      const start = async (label: string) => {
        const reservation = scheduler.reserve({ numCpus: 0.1, memoryBytes: 256 * MIB, numGpus: 0 })
        assert.ok(!isRefusal(reservation))
        const runner = await scheduler.start(reservation, {
          runtime: 'onnx',
          label,
          organizationId: 'org_a',
          mayShare: true,
          modelBytes: 1024,
        })
        await runner.load({ path: modelFile(1), root: dir.path }, 10_000)
        return runner
      }
      const greedy = await start('org_a/greedy')
      const neighbour = await start('org_a/neighbour')
      assert.equal(pidOf(greedy), pidOf(neighbour))
      const data = new Uint8Array(4)
      await assert.rejects(
        greedy.infer([{ name: 'x', datatype: 'FP32', shape: [1], data }], null, 20_000),
        (err) => isBerthError(err, 'inference_out_of_memory'),
      )
      assert.equal((await greedy.ended).cause, 'request_out_of_memory')
      assert.equal((await neighbour.ended).cause, 'crashed')
      assert.ok(isGone(pidOf(greedy)))
    } finally {
      await scheduler.close()
    }
  })

  it('keeps torch models, large models and models that may not share in processes of their own', async () => {
    // Every runtime runs berth's ONNX runner here: only where each runner is placed matters.
    const scheduler = await open({}, () => ({ entry: RUNNER_ENTRY, args: ['onnx'] }))
    try {
      const reservation = scheduler.reserve({ numCpus: 0.1, memoryBytes: GIB, numGpus: 0 })
      assert.ok(!isRefusal(reservation))
      const base = { organizationId: 'org_a', mayShare: true, modelBytes: 1024 }
      const torch = await Promise.all(
        ['t1', 't2'].map((label) =>
          scheduler.start(reservation, { ...base, runtime: 'torch', label }),
        ),
      )
      const large = await Promise.all(
        ['l1', 'l2'].map((label) =>
          scheduler.start(reservation, { ...base, runtime: 'onnx', label, modelBytes: 65 * MIB }),
        ),
      )
      const unshared = await Promise.all(
        ['u1', 'u2'].map((label) =>
          scheduler.start(reservation, { ...base, runtime: 'onnx', label, mayShare: false }),
        ),
      )
      const all = [...torch, ...large, ...unshared]
      assert.ok(all.every((r) => r instanceof LocalRunner))
      assert.equal(new Set(all.map(pidOf)).size, all.length)
    } finally {
      await scheduler.close()
    }
  })

  it('turns sharing off with a limit of one model per process', async () => {
    const scheduler = await open({ maxModels: 1 })
    try {
      const runners = await Promise.all([1, 2].map((seed) => deploy(scheduler, 'org_a', seed)))
      assert.ok(runners.every((r) => r instanceof LocalRunner))
      assert.notEqual(pidOf(runners[0] as Runner), pidOf(runners[1] as Runner))
    } finally {
      await scheduler.close()
    }
  })

  it('takes a spare for a shared process, records its pid, and leaves nothing behind on close', async () => {
    const runDir = join(dir.path, 'run-spare')
    const scheduler = await open({ runDir, spareRunners: 1 })
    const pidFiles = async () => (await readdir(runDir).catch(() => [])).map(Number).sort()
    try {
      await eventually(async () => (await pidFiles()).length === 1)
      const [spare] = await pidFiles()
      const [one, two] = await Promise.all([
        deploy(scheduler, 'org_a', 1),
        deploy(scheduler, 'org_a', 2),
      ])
      assert.ok(one && two)
      assert.equal(pidOf(one), spare)
      assert.equal(pidOf(two), spare)
      await eventually(async () => (await pidFiles()).length === 2)
      const all = await pidFiles()
      await scheduler.close()
      assert.ok(all.every(isGone))
      assert.deepEqual(await pidFiles(), [])
      assert.equal((await one.ended).cause, 'stopped')
    } finally {
      await scheduler.close()
    }
  })

  it('ends the leftovers of a crashed server, shared processes included', async () => {
    const runDir = join(dir.path, 'run-leftover')
    const crashed = await open({ runDir })
    const [one] = await Promise.all([deploy(crashed, 'org_a', 1), deploy(crashed, 'org_a', 2)])
    assert.ok(one)
    const pid = pidOf(one)
    const restarted = await open({ runDir })
    try {
      await eventually(() => isGone(pid))
    } finally {
      await restarted.close()
      await crashed.close()
    }
  })
})
