/**
 * Shared runner memory: the resident memory (VmRSS) of N tiny ONNX models (MLP 16→32→4) in one
 * shared runner process, against N runner processes of their own, each model loaded and having
 * answered one request.
 *
 *   npm run build && npm run build:test && node build/bench/shared-runners.js [N]   (default: 32)
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LocalRunner } from '../src/scheduler/local/local-runner.js'
import { LocalScheduler } from '../src/scheduler/local/local-scheduler.js'
import { residentBytes } from '../src/scheduler/local/resident-memory.js'
import { SharedRunner } from '../src/scheduler/local/shared-runner.js'
import { isRefusal, type Runner } from '../src/scheduler/scheduler.js'
import { mlpModel } from '../test/fixtures/onnx-models.js'
import { tempDir } from '../test/helpers/temp-dir.js'

const MIB = 1024 ** 2
const count = Number(process.argv[2] ?? 32)
const dir = await tempDir('berth-bench-shared-')

async function measure(maxModels: number): Promise<{ processes: number; residentMib: number }> {
  const scheduler = await LocalScheduler.open({
    node: { cpus: 2, cpuOvercommit: 1000, memoryBytes: 1024 * 1024 * MIB, gpus: 0 },
    runDir: join(dir.path, `run-${maxModels}`),
    startTimeoutMs: 30_000,
    killGraceMs: 1000,
    memoryPollMs: 100,
    maxFrameBytes: 1 << 30,
    sharing: { maxModels, maxModelBytes: 64 * MIB },
  })
  try {
    const runners: Runner[] = []
    for (let i = 0; i < count; i++) {
      const path = join(dir.path, `mlp-${i}.onnx`)
      await writeFile(path, mlpModel(16, 32, 4, i + 1))
      const reservation = scheduler.reserve({ numCpus: 0.01, memoryBytes: 256 * MIB, numGpus: 0 })
      if (isRefusal(reservation)) throw new Error(reservation.message)
      const runner = await scheduler.start(reservation, {
        runtime: 'onnx',
        label: `bench/mlp-${i}`,
        organizationId: 'org_bench',
        mayShare: true,
        modelBytes: 4096,
      })
      await runner.load({ path, root: dir.path }, 30_000)
      const data = new Uint8Array(Float32Array.from({ length: 16 }, () => 0.5).buffer)
      await runner.infer([{ name: 'x', datatype: 'FP32', shape: [1, 16], data }], null, 30_000)
      runners.push(runner)
    }
    const pids = new Set(
      runners.map((r) => (r instanceof SharedRunner || r instanceof LocalRunner ? r.pid : 0)),
    )
    let total = 0
    for (const pid of pids) total += (pid === undefined ? 0 : await residentBytes(pid)) ?? 0
    return { processes: pids.size, residentMib: total / MIB }
  } finally {
    await scheduler.close()
  }
}

try {
  const shared = await measure(count)
  const separate = await measure(1)
  const row = (label: string, m: { processes: number; residentMib: number }) =>
    `${label.padEnd(10)} ${String(m.processes).padStart(9)} ${m.residentMib.toFixed(1).padStart(12)} ${(m.residentMib / count).toFixed(2).padStart(15)}`
  console.log(`${count} tiny MLPs (16→32→4), each loaded and run once`)
  console.log(
    `${'runners'.padEnd(10)} ${'processes'.padStart(9)} ${'resident MiB'.padStart(12)} ${'MiB per model'.padStart(15)}`,
  )
  console.log(row('shared', shared))
  console.log(row('separate', separate))
} finally {
  await dir.remove()
}
