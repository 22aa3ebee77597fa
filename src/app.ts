import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { AccountService, type BootstrapResult } from './accounts/account-service.js'
import { ArchiveWorkspace } from './archives/archive-workspace.js'
import { createArtifactStore } from './artifacts/create-artifact-store.js'
import type { Config } from './config/config.js'
import { consoleFiles } from './console-files.js'
import { DataDirLock } from './data-dir-lock.js'
import { DeploymentManager } from './deployments/deployment-manager.js'
import { DeploymentSync } from './deployments/deployment-sync.js'
import { type CrashHook, type CrashPoint, noCrash } from './domain/crash-points.js'
import { closeServer } from './http/close-server.js'
import { metricsAccessOf } from './http/routes/metrics.routes.js'
import { buildMetricsServer, buildServer } from './http/server.js'
import { InferenceService } from './inference/inference-service.js'
import { createMetadataStore } from './metadata/create-metadata-store.js'
import { NamespaceService } from './namespaces/namespace-service.js'
import { InferenceRecorder } from './observability/inference-records.js'
import { createLogger } from './observability/logger.js'
import { Metrics, modelLabels } from './observability/metrics.js'
import { ModelHistory } from './observability/model-history.js'
import { DeploymentService } from './registry/deployment-service.js'
import { InferenceAnalytics } from './registry/inference-analytics.js'
import { InstalledModels } from './registry/installed-models.js'
import { LeftoverSweeper } from './registry/leftover-sweeper.js'
import { ModelCatalog } from './registry/model-catalog.js'
import { ModelRepository } from './registry/model-repository.js'
import { OrgModelRegistry } from './registry/org-model-registry.js'
import { TensorInventory } from './registry/tensor-inventory.js'
import { UploadPipeline } from './registry/upload-pipeline.js'
import { UploadSignature } from './registry/upload-signature.js'
import { containerPlacementFor, followCapacity } from './scheduler/container-placement.js'
import { LocalScheduler } from './scheduler/local/local-scheduler.js'
import { RunnerLoadCheck } from './scheduler/local/runner-load-check.js'
import { BERTH_VERSION } from './version.js'

export interface AppOptions {
  /** Defaults to a logger on stdout at `config.logLevel`, in `config.logFormat`. */
  readonly logger?: Logger
}

export interface App {
  /** Not listening yet: `main.ts` listens, tests `inject()`. */
  readonly server: FastifyInstance
  /** `/metrics` on a listener of its own (BERTH_METRICS_PORT), not listening yet; else unset. */
  readonly metricsServer: FastifyInstance | undefined
  readonly logger: Logger
  /** What the first start created; `generatedKeyFile` is where a generated key was written. */
  readonly bootstrap: BootstrapResult & { readonly generatedKeyFile?: string }
  /**
   * Stops accepting, drains in-flight requests (bounded by `shutdownTimeoutMs`, then cuts the
   * remaining connections), closes the stores. Idempotent.
   */
  close(): Promise<void>
}

/** How often what no live request or record owns is looked for (tmp/, archives). */
const SWEEP_INTERVAL_MS = 5 * 60 * 1000

/** How often the inference traffic counted since the last time is added to the metadata store. */
const INFERENCE_RECORDS_INTERVAL_MS = 5000

/** Small, very regular files may compress far better than weights; the ratio rule starts here. */
const RATIO_GRACE_BYTES = 64 * 1024 * 1024

/** After SIGTERM, how long a runner may take to exit before SIGKILL. */
const RUNNER_KILL_GRACE_MS = 2000

/** How often runners' resident memory is compared with their `memory_gb`. */
const MEMORY_POLL_MS = 100

/** Largest message a runner may send (a model's outputs for one request). */
const MAX_RUNNER_FRAME_BYTES = 1024 ** 3

/** Name of the file, under the data dir, that receives a generated bootstrap key (mode 0600). */
export const BOOTSTRAP_KEY_FILE = 'bootstrap-api-key'
/** Where a generated key for berth's own upload URLs is kept (BERTH_UPLOAD_SIGNING_KEY unset). */
export const UPLOAD_SIGNING_KEY_FILE = 'upload-signing-key'

/**
 * The key that signs berth's upload URLs: `BERTH_UPLOAD_SIGNING_KEY`, or one generated once and
 * kept in the data dir (mode 0600), so URLs handed out survive a restart.
 */
async function uploadSigningKey(config: Config): Promise<Buffer> {
  if (config.uploadSigningKey !== undefined) return Buffer.from(config.uploadSigningKey)
  const file = join(config.dataDir, UPLOAD_SIGNING_KEY_FILE)
  await mkdir(config.dataDir, { recursive: true })
  try {
    await writeFile(file, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  return Buffer.from((await readFile(file, 'utf8')).trim())
}

/**
 * The crash tests' hook: SIGKILL at the one named point (no cleanup, no answer, as a power cut
 * or the kernel's OOM killer would), and nothing anywhere else.
 */
function crashHook(crashAt: CrashPoint | undefined): CrashHook {
  if (crashAt === undefined) return noCrash
  return (point) => {
    if (point === crashAt) process.kill(process.pid, 'SIGKILL')
  }
}

/** The composition root: builds every adapter and service from the configuration. */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const pretty =
    config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY === true)
  const logger = options.logger ?? createLogger(config.logLevel, { pretty })
  // First: a second server on this directory would end this one's runners as leftovers.
  const lock = await DataDirLock.acquire(config.dataDir)
  // What the app holds, newest first: closed in this order after the HTTP server (the owners of
  // runners, then the stores, then the lock), or at once when the start fails.
  const closers: Array<readonly [string, () => Promise<void>]> = [
    ['data directory lock', () => lock.release()],
  ]
  // Traces (OTEL_EXPORTER_OTLP_ENDPOINT), sent until the very end: the last spans are the close.
  if (config.tracing !== undefined) {
    const { startTracing } = await import('./observability/tracing-sdk.js')
    closers.push(['tracing', startTracing(config.tracing)])
  }
  try {
    const metadata = await createMetadataStore(config.metadata)
    closers.unshift(['metadata', () => metadata.close()])
    const artifacts = await createArtifactStore(config.artifacts)
    closers.unshift(['artifacts', () => artifacts.close()])
    const accounts = new AccountService(metadata)
    const namespaces = new NamespaceService(metadata)
    const workspace = new ArchiveWorkspace(config.dataDir)
    const metrics = new Metrics()
    const recorder = new InferenceRecorder(
      { sink: metadata, now: () => Date.now(), logger },
      { intervalMs: INFERENCE_RECORDS_INTERVAL_MS },
    )
    // Closed just before the store: after the HTTP server and the deployments, whose requests
    // and loads it counts, have stopped.
    closers.unshift(['inference records', () => recorder.close()])
    metrics.watchInference(recorder)
    recorder.start()
    const crash = crashHook(config.crashAt)
    // Two bounds with no variable of their own. A runner's start (spawn and handshake) is bounded
    // by the load timeout: both bound the same wait for a new runner to be usable, and the load
    // timeout documents it. A runner stopped by an undeploy or a redeploy drains its in-flight
    // requests for as long as a shutdown drains the server's: the same promise to the clients.
    const runnerStartTimeoutMs = config.limits.loadTimeoutMs
    const runnerDrainMs = config.shutdownTimeoutMs
    const protocol = {
      startTimeoutMs: runnerStartTimeoutMs,
      killGraceMs: RUNNER_KILL_GRACE_MS,
      maxFrameBytes: MAX_RUNNER_FRAME_BYTES,
      ping: config.scheduler.runnerPing,
      // Runners trace too when berth does: their spans are children of berth's calls.
      runnerEnv:
        config.tracing === undefined
          ? config.scheduler.runnerEnv
          : { ...config.scheduler.runnerEnv, BERTH_RUNNER_TRACES_URL: config.tracing.url },
    }
    const archiveLimits = {
      maxEntries: config.limits.maxArchiveEntries,
      maxUnpackedBytes: config.limits.maxUnpackedBytes,
      maxCompressionRatio: config.limits.maxCompressionRatio,
      ratioGraceBytes: RATIO_GRACE_BYTES,
    }
    const maxArchiveBytes = config.limits.maxArchiveBytes
    const installed = new InstalledModels(
      { workspace, artifacts, metadata },
      { maxArchiveBytes, archiveLimits },
    )
    const placement = await containerPlacementFor(
      config.scheduler,
      // What runners read: the installed models, and an upload's files for its load check.
      {
        dataDir: config.dataDir,
        readOnlyDirs: [workspace.modelsDir, workspace.tmpDir],
        runDir: join(config.dataDir, 'run'),
      },
      protocol,
    )
    const scheduler = await LocalScheduler.open({
      ...protocol,
      node: placement?.node ?? config.scheduler.node,
      runDir: join(config.dataDir, 'run'),
      memoryPollMs: MEMORY_POLL_MS,
      torchPython: config.scheduler.torchPython,
      // A container each: no spare started ahead, no container shared by several models.
      ...(placement === undefined
        ? { spareRunners: config.scheduler.spareRunners, sharing: config.scheduler.sharedRunners }
        : {
            launcher: placement.launcher,
            spareRunners: 0,
            ...(placement.checkLauncher === undefined
              ? {}
              : { checkLauncher: placement.checkLauncher }),
          }),
      log: (line, fields) => logger.info({ ...fields, line }, 'runner output'),
    })
    closers.unshift(['scheduler', () => scheduler.close()])
    if (placement?.capacity !== undefined) {
      const stop = followCapacity(placement.capacity, scheduler, placement.node, {
        log: (err) => logger.warn({ err }, 'the swarm did not say its nodes; capacity unchanged'),
      })
      closers.unshift(['capacity', async () => stop()])
    }
    const loadCheck = new RunnerLoadCheck({
      timeoutMs: config.limits.loadTimeoutMs,
      startWorker: () => scheduler.startCheckWorker(),
    })
    const deployments = new DeploymentManager(
      {
        metadata,
        scheduler,
        modelDir: (model) => workspace.modelDir(model.namespaceId, model.uploadId),
        ...(config.scheduler.runnerFiles === 'fetch'
          ? { archiveSource: (model) => installed.archiveSource(model, runnerStartTimeoutMs) }
          : {}),
        metrics,
        logger,
        crash,
      },
      {
        loadTimeoutMs: config.limits.loadTimeoutMs,
        maxRestarts: config.deployments.maxRestarts,
        restartBackoffMs: config.deployments.restartBackoffMs,
        idleTimeoutMs: config.deployments.idleTimeoutMs,
        drainMs: runnerDrainMs,
      },
    )
    closers.unshift(['deployments', () => deployments.close()])
    // Each model's last hour in memory, gauges read from the deployments: the console's charts.
    const history = new ModelHistory({ sample: () => deployments.nodeView().deployments })
    closers.unshift(['model history', async () => history.close()])
    metrics.watchInference(history)
    history.start()
    metrics.watchCapacityLeaks(() => {
      const { unowned, misheld } = deployments.auditReservations()
      return unowned + misheld.length
    })
    metrics.nameNamespaces(async () => {
      const all = await metadata.listAllNamespaces()
      return new Map(all.map((namespace) => [namespace.id, namespace.name]))
    })
    metrics.watchNode(() => {
      const { usage, deployments: summaries } = deployments.nodeView()
      return {
        capacity: { offered: usage, reserved: usage.reserved },
        models: summaries.map((s) => ({
          labels: modelLabels(s.model),
          residentBytes: s.residentBytes,
          activeRequests: s.activeRequests,
        })),
      }
    })
    const inference = new InferenceService(
      { deployments, metrics },
      {
        timeoutMs: config.inference.timeoutMs,
        maxQueueSize: config.inference.maxQueueSize,
        maxTensorBytes: config.inference.maxTensorBytes,
        maxJsonBytes: config.inference.maxJsonBytes,
        memoryBudgetBytes: config.inference.memoryBudgetBytes,
      },
    )
    closers.unshift(['inference', () => inference.close()])
    const catalog = new ModelCatalog({
      metadata,
      artifacts,
      namespaces,
      installed,
      deployments,
      crash,
    })
    const modelDeployments = new DeploymentService(
      {
        catalog,
        metadata,
        control: deployments,
        install: (model) => installed.installLocally(model),
      },
      { waitTimeoutMs: config.deployments.waitTimeoutMs },
    )
    const repository = new ModelRepository({ catalog, deployments: modelDeployments })
    const uploads = new UploadPipeline(
      {
        metadata,
        artifacts,
        workspace,
        installed,
        loadCheck,
        catalog,
        deployments: modelDeployments,
        crash,
      },
      { maxArchiveBytes, archiveLimits },
    )
    const tensors = new TensorInventory({ catalog, installed })
    const orgModels = new OrgModelRegistry(
      {
        metadata,
        artifacts,
        workspace,
        catalog,
        uploads,
        signature: new UploadSignature(await uploadSigningKey(config)),
      },
      { publicUrl: config.http.publicUrl, maxArchiveBytes },
    )
    const sweeper = new LeftoverSweeper(
      { workspace, installed, artifacts, metadata, logger },
      { archiveGraceMs: config.limits.orphanGraceMs, intervalMs: SWEEP_INTERVAL_MS },
    )
    closers.unshift(['leftover sweeper', () => sweeper.close()])
    // Before any request: what a crash left is nobody's, however fresh.
    await sweeper.atStart().catch((err: unknown) => {
      // A cleanup: what it could not remove now, the next sweep tries again.
      logger.warn({ err }, 'could not remove what an earlier crash left')
    })
    sweeper.start()
    const sync = new DeploymentSync(
      {
        metadata,
        deployments,
        install: (model) => installed.installLocally(model),
        forget: (model) => installed.forgetLocally(model),
        installed: () => installed.recordedInstalls(),
        removeFiles: (keys) => installed.removeInstalls(keys),
        logger,
      },
      { intervalMs: config.deployments.syncIntervalMs },
    )
    closers.unshift(['deployment sync', () => sync.close()])
    // Models deployed through other instances need their files here before they can start.
    await sync.installWanted()
    await deployments.reconcile()
    sync.start()

    const bootstrap = await bootstrapOrganization(accounts, config)
    const metricsAccess = metricsAccessOf(config.metrics, config.http.host)
    if (metricsAccess.api?.kind === 'refused') {
      logger.warn(
        { host: config.http.host },
        '/metrics is not served: the API listens beyond this machine; set BERTH_METRICS_TOKEN, or BERTH_METRICS_PORT for a listener of its own',
      )
    }
    const server = await buildServer(
      {
        logger,
        bodyLimitBytes: config.http.bodyLimitBytes,
        publicUrl: config.http.publicUrl,
        maxArchiveBytes: config.limits.maxArchiveBytes,
        version: BERTH_VERSION,
        maxInferBytes: config.inference.maxRequestBytes,
        maxInferJsonBytes: config.inference.maxJsonBytes,
        timeouts: config.http.timeouts,
        metricsAccess: metricsAccess.api,
        consoleFiles: consoleFiles(),
      },
      {
        accounts,
        namespaces,
        uploads,
        catalog,
        deployments: modelDeployments,
        repository,
        tensors,
        orgModels,
        inference,
        analytics: new InferenceAnalytics({
          namespaces,
          records: metadata,
          flush: () => recorder.flush(),
          now: () => Date.now(),
        }),
        metrics,
        history,
      },
    )

    const metricsServer =
      metricsAccess.own === undefined
        ? undefined
        : await buildMetricsServer({
            logger: logger.child({ listener: 'metrics' }),
            metrics,
            access: metricsAccess.own,
            timeouts: config.http.timeouts,
          })

    let closing: Promise<void> | undefined
    const shutdown = async (): Promise<void> => {
      // Stop accepting and drain requests, then runners (TERM, then KILL), then the stores.
      const steps: ReadonlyArray<readonly [string, () => Promise<void>]> = [
        ['http', () => closeServer(server, config.shutdownTimeoutMs)],
        ...(metricsServer === undefined
          ? []
          : [
              ['metrics http', () => closeServer(metricsServer, config.shutdownTimeoutMs)] as const,
            ]),
        ...closers,
      ]
      // Every step runs even if an earlier one failed.
      for (const [step, run] of steps) {
        try {
          await run()
        } catch (err) {
          logger.error({ err, step }, 'shutdown step failed')
        }
      }
    }
    return {
      server,
      metricsServer,
      logger,
      bootstrap,
      close: () => {
        closing ??= shutdown()
        return closing
      },
    }
  } catch (err) {
    for (const [, close] of closers) await close().catch(() => undefined)
    throw err
  }
}

async function bootstrapOrganization(
  accounts: AccountService,
  config: Config,
): Promise<App['bootstrap']> {
  const result = await accounts.bootstrap(config.bootstrapApiKey)
  if (!result.created || result.generatedKey === undefined) return result
  await mkdir(config.dataDir, { recursive: true })
  const generatedKeyFile = join(config.dataDir, BOOTSTRAP_KEY_FILE)
  await writeFile(generatedKeyFile, `${result.generatedKey}\n`, { mode: 0o600 })
  // `mode` applies only when the file is created; a stale file keeps its old mode otherwise.
  await chmod(generatedKeyFile, 0o600)
  return { ...result, generatedKeyFile }
}
