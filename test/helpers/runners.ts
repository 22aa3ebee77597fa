import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { DockerEngine } from '../../src/scheduler/docker/docker-engine.js'
import type { WorkerProcess } from '../../src/scheduler/local/worker-process.js'
import { OWNER_LABEL, ownerOf } from '../../src/scheduler/runner-containers.js'
import { SwarmEngine, taskEnded } from '../../src/scheduler/swarm/swarm-engine.js'
import { referenceMlp } from '../fixtures/onnx-models.js'
import { assertClose } from './inference.js'
import { isGone } from './processes.js'
import type { TestApp } from './test-app.js'

/** One of a server's runners, whichever scheduler placed it. */
export interface RunnerView {
  /** A process id, a container id or a service id. */
  readonly id: string
  /** Whether it still runs now. */
  alive(): Promise<boolean>
}

/**
 * The runners a test app's scheduler has started and not yet cleaned after: its runner child
 * processes (their pid files), or its containers or Swarm services (by their owner label).
 */
export async function runnersOf(t: TestApp): Promise<RunnerView[]> {
  const { driver, docker } = t.config.scheduler
  const owner = ownerOf(t.dataDir)
  if (driver === 'docker') {
    const engine = new DockerEngine(docker.host)
    return (await engine.list(OWNER_LABEL, owner)).map((id) => ({
      id,
      alive: async () => (await engine.inspect(id))?.running === true,
    }))
  }
  if (driver === 'swarm') {
    const swarm = new SwarmEngine(docker.host)
    return (await swarm.listServices(OWNER_LABEL, owner)).map((id) => ({
      id,
      alive: async () => {
        const [task] = await swarm.tasks({ service: id })
        return task !== undefined && !taskEnded(task)
      },
    }))
  }
  const pids = await readdir(join(t.dataDir, 'run')).catch(() => [])
  return pids.map((pid) => ({ id: pid, alive: async () => !isGone(Number(pid)) }))
}

/**
 * Loads `mlpModel(4, 8, 3, 7)` at `modelPath` into slot 0 of a runner and checks one inference
 * against the reference MLP: the runner serves over whatever channel it was reached by.
 */
export async function assertServesMlp(
  worker: WorkerProcess,
  modelPath: string,
  timeoutMs: number,
): Promise<void> {
  const load = { type: 'load', slot: 0, modelPath, intraOpThreads: 1 } as const
  const loaded = await worker.call(load, timeoutMs)
  assert.equal(loaded.type, 'loaded')
  const x = [1, 2, 3, 4]
  const data = new Uint8Array(Float32Array.from(x).buffer)
  const answer = await worker.call(
    {
      type: 'infer',
      slot: 0,
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data }],
      outputs: null,
    },
    timeoutMs,
  )
  assert.equal(answer.type, 'result')
  if (answer.type !== 'result') return
  const y = new Float32Array(Uint8Array.from(answer.outputs[0]?.data ?? []).buffer)
  const want = referenceMlp(x, 1, 4, 8, 3, 7)
  assertClose([...y], want)
}
