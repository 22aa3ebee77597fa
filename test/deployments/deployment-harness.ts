import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import type { NodeCapacity } from '../../src/config/config.js'
import { DeploymentManager } from '../../src/deployments/deployment-manager.js'
import type { Clock } from '../../src/domain/clock.js'
import type { Deployment } from '../../src/domain/deployment-state.js'
import { NEW_DEPLOYMENT, UNDEPLOYED } from '../../src/domain/deployment-state.js'
import { newId } from '../../src/domain/ids.js'
import {
  DEFAULT_SERVING,
  type Model,
  type ResourceRequirements,
  type ServingSettings,
} from '../../src/domain/model.js'
import { SqliteMetadataStore } from '../../src/metadata/sqlite/sqlite-metadata-store.js'
import { Metrics } from '../../src/observability/metrics.js'
import { LocalScheduler } from '../../src/scheduler/local/local-scheduler.js'
import type { RunnerPing } from '../../src/scheduler/local/worker-process.js'
import type { Runner } from '../../src/scheduler/scheduler.js'
import { modelRecord } from '../fixtures/model-records.js'
import { tempDir } from '../helpers/temp-dir.js'

const MISBEHAVING = fileURLToPath(
  new URL('../fixtures/workers/misbehaving-runner.js', import.meta.url),
)
const GIB = 1024 ** 3
export const MIB = 1024 ** 2

export interface HarnessOptions {
  /** The misbehaving runner's mode (see test/fixtures/workers/misbehaving-runner.ts). */
  readonly mode: string
  readonly node?: Partial<NodeCapacity>
  readonly maxRestarts?: number
  /** Runners replaced for a request's fault before the deployment fails (10 unless given). */
  readonly maxReplaces?: number
  readonly loadTimeoutMs?: number
  /** Time for restart backoff (e.g. a `TestClock`); the system clock by default. */
  readonly clock?: Clock
  /** Liveness pings of idle runners; none unless given. */
  readonly ping?: RunnerPing
  /** Warm-up inference before serving (off unless given). */
  readonly warmUp?: boolean
}

/**
 * A deployment manager on a real SQLite store and real runner processes (the misbehaving
 * fixture), with every runner's pid recorded so tests can check none outlives them.
 */
export async function deploymentHarness(options: HarnessOptions) {
  const dir = await tempDir('berth-deploy-')
  const store = await SqliteMetadataStore.open({ driver: 'sqlite', path: join(dir.path, 'db') })
  const now = new Date().toISOString()
  const orgId = newId('org')
  await store.createOrganization({
    id: orgId,
    name: `org-${orgId}`,
    tier: 'enterprise',
    createdAt: now,
    updatedAt: now,
  })
  const namespaceId = newId('ns')
  await store.createNamespace({
    id: namespaceId,
    organizationId: orgId,
    name: 'deployments',
    description: null,
    createdAt: now,
    updatedAt: now,
  })
  const pidLog = join(dir.path, 'pids')
  const scheduler = await LocalScheduler.open({
    node: { cpus: 2, cpuOvercommit: 1, memoryBytes: 8 * GIB, gpus: 0, ...options.node },
    runDir: join(dir.path, 'run'),
    startTimeoutMs: 3000,
    killGraceMs: 300,
    memoryPollMs: 20,
    maxFrameBytes: 1 << 30,
    ping: options.ping,
    command: () => ({ entry: MISBEHAVING, args: [options.mode, pidLog] }),
  })
  const metrics = new Metrics()
  const manager = new DeploymentManager(
    {
      metadata: store,
      scheduler,
      modelDir: () => dir.path,
      metrics,
      logger: pino({ level: 'silent' }),
    },
    {
      loadTimeoutMs: options.loadTimeoutMs ?? 3000,
      maxRestarts: options.maxRestarts ?? 0,
      ...(options.maxReplaces === undefined ? {} : { maxReplaces: options.maxReplaces }),
      restartBackoffMs: 20,
      drainMs: 200,
      // The fixture runners misbehave on inference on purpose: warm-up is tested on its own.
      warmUp: options.warmUp ?? false,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    },
  )

  return {
    store,
    manager,
    metrics,
    scheduler,
    /** The first runner serving the model (throws `model_not_ready` when none). */
    runnerOf(model: Model): Runner {
      const runner = manager.serving(model).pool.targets[0]
      if (runner === undefined) throw new Error('no runner')
      return runner
    },
    /** Records a model whose manifest says it is served by ONNX Runtime. */
    async model(
      name: string,
      resources: Partial<ResourceRequirements> = {},
      replicas = 1,
      serving: Partial<ServingSettings> = {},
    ): Promise<Model> {
      const model = modelRecord(
        { id: namespaceId, organizationId: orgId },
        {
          name,
          taskType: null,
          resources: { numCpus: 1, numGpus: 0, memoryBytes: 1 * GIB, ...resources },
          serving: { ...DEFAULT_SERVING, replicas, ...serving },
          createdAt: now,
          updatedAt: now,
          // On demand: served (loaded by its first request), as an upload without deploy.
          deployment:
            serving.loadPolicy === 'on_demand' ? NEW_DEPLOYMENT(now, 'on_demand') : UNDEPLOYED(now),
        },
      )
      await store.createModel(model)
      return model
    },
    /** The deployment as recorded in the store. */
    async recorded(model: Model): Promise<Deployment | undefined> {
      return (await store.findModel(model.namespaceId, model.modelId))?.deployment
    },
    /** Pids of every runner started so far. */
    async pids(): Promise<number[]> {
      const text = await readFile(pidLog, 'utf8').catch(() => '')
      return text
        .split('\n')
        .filter((l) => l !== '')
        .map(Number)
    },
    /**
     * Checks the reservation invariant, then closes. Every lifecycle test ends here, so each one
     * also proves it leaked no capacity, whatever state it left its models in.
     */
    async close(): Promise<void> {
      const audit = manager.auditReservations()
      await manager.close()
      await scheduler.close()
      await store.close()
      await dir.remove()
      assert.deepEqual(audit, { unowned: 0, misheld: [] }, 'the reservation invariant held')
    },
  }
}

export const f32 = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer)
