import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { LocalScheduler } from '../../src/scheduler/local/local-scheduler.js'
import { isRefusal } from '../../src/scheduler/scheduler.js'
import { eventually, isGone } from '../helpers/processes.js'
import { tempDir } from '../helpers/temp-dir.js'

const MISBEHAVING = fileURLToPath(
  new URL('../fixtures/workers/misbehaving-runner.js', import.meta.url),
)
const GIB = 1024 ** 3

describe('local scheduler', () => {
  const open = (runDir: string, spareRunners = 0) =>
    LocalScheduler.open({
      spareRunners,
      node: { cpus: 2, cpuOvercommit: 1.5, memoryBytes: 2 * GIB, gpus: 0 },
      runDir,
      startTimeoutMs: 3000,
      killGraceMs: 300,
      memoryPollMs: 50,
      maxFrameBytes: 1 << 20,
      command: () => ({ entry: MISBEHAVING, args: ['ignore-sigterm'] }),
    })

  it('reserves against CPUs times the overcommit factor, memory and GPUs', async () => {
    const dir = await tempDir()
    const scheduler = await open(join(dir.path, 'run'))
    try {
      const r = (numCpus: number, memoryBytes = 0, numGpus = 0) =>
        scheduler.reserve({ numCpus, memoryBytes, numGpus })
      const a = r(2)
      const b = r(1)
      assert.ok(!isRefusal(a) && !isRefusal(b))
      const full = r(0.5)
      assert.ok(isRefusal(full) && full.reason === 'insufficient_cpu' && !full.never)
      const never = r(3.5)
      assert.ok(isRefusal(never) && never.reason === 'insufficient_cpu' && never.never)
      b.release()
      b.release() // idempotent: the capacity comes back once
      const c = r(1)
      assert.ok(!isRefusal(c))
      assert.ok(isRefusal(r(0.1)))
      const memory = r(0, 3 * GIB)
      assert.ok(isRefusal(memory) && memory.reason === 'insufficient_memory' && memory.never)
      const gpu = r(0, 0, 1)
      assert.ok(isRefusal(gpu) && gpu.reason === 'insufficient_gpu' && gpu.never)
    } finally {
      await scheduler.close()
      await dir.remove()
    }
  })

  it('ends runners a crashed server left behind, and only those', async () => {
    const dir = await tempDir()
    const runDir = join(dir.path, 'run')
    const crashed = await open(runDir)
    const reservation = crashed.reserve({ numCpus: 1, memoryBytes: GIB, numGpus: 0 })
    assert.ok(!isRefusal(reservation))
    // A runner that ignores SIGTERM, as a stuck one would; its server "crashes" (never closes).
    const orphan = await crashed.start(reservation, {
      runtime: 'onnx',
      label: 'orphan',
      organizationId: 'org_1',
    })
    const pid = Number(orphan.id)
    assert.ok(!isGone(pid))
    const restarted = await open(runDir)
    try {
      await eventually(() => isGone(pid))
    } finally {
      await restarted.close()
      await crashed.close()
      await dir.remove()
    }
  })

  it('stops a runner that ignores SIGTERM with SIGKILL on close', async () => {
    const dir = await tempDir()
    const scheduler = await open(join(dir.path, 'run'))
    const reservation = scheduler.reserve({ numCpus: 1, memoryBytes: GIB, numGpus: 0 })
    assert.ok(!isRefusal(reservation))
    const runner = await scheduler.start(reservation, {
      runtime: 'onnx',
      label: 'stubborn',
      organizationId: 'org_1',
    })
    await scheduler.close()
    assert.ok(isGone(Number(runner.id)))
    assert.equal((await runner.ended).cause, 'stopped')
    await dir.remove()
  })

  it('keeps a spare runner started: a start takes it, a new spare follows, close ends both', async () => {
    const dir = await tempDir()
    const runDir = join(dir.path, 'run')
    const scheduler = await open(runDir, 1)
    const pidFiles = async () => (await readdir(runDir).catch(() => [])).map(Number).sort()
    try {
      await eventually(async () => (await pidFiles()).length === 1)
      const [spare] = await pidFiles()
      const reservation = scheduler.reserve({ numCpus: 1, memoryBytes: GIB, numGpus: 0 })
      assert.ok(!isRefusal(reservation))
      const runner = await scheduler.start(reservation, {
        runtime: 'onnx',
        label: 'quick',
        organizationId: 'org_1',
      })
      assert.equal(Number(runner.id), spare)
      await eventually(async () => (await pidFiles()).length === 2)
      const [next] = (await pidFiles()).filter((pid) => pid !== spare)
      // A spare that died while idle is not handed out: a fresh process takes its place.
      process.kill(next as number, 'SIGKILL')
      await eventually(async () => !(await pidFiles()).includes(next as number))
      const other = await scheduler.start(reservation, {
        runtime: 'onnx',
        label: 'fresh',
        organizationId: 'org_1',
      })
      assert.ok(!isGone(Number(other.id)))
      assert.notEqual(Number(other.id), next)
      const all = await pidFiles()
      await scheduler.close()
      assert.ok(all.every(isGone))
      assert.deepEqual(await pidFiles(), [])
    } finally {
      await scheduler.close()
      await dir.remove()
    }
  })
})
