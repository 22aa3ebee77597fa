import type { Logger } from 'pino'
import type { Model } from '../domain/model.js'
import type { DeploymentRecords, ModelRecords } from '../metadata/metadata-store.js'
import type { DeploymentManager } from './deployment-manager.js'

export interface DeploymentSyncDeps {
  readonly metadata: DeploymentRecords & Pick<ModelRecords, 'findModel'>
  readonly deployments: DeploymentManager
  /** Gets the model's files onto this server (uploaded elsewhere: fetched and unpacked). */
  readonly install: (model: Model) => Promise<void>
  /** Removes this server's files of a model deleted elsewhere. */
  readonly forget: (model: Model) => Promise<void>
  /** This server's installed model files (`namespaceId/uploadId`) whose model was recorded. */
  readonly installed: () => Promise<string[]>
  /** Removes installed model files: models deleted elsewhere without ever running here. */
  readonly removeFiles: (keys: readonly string[]) => Promise<void>
  readonly logger: Logger
}

/**
 * Several berth instances on one database: each follows the desired states recorded there.
 * Every `intervalMs` it deploys here what is wanted deployed (fetching the model's files when it
 * was uploaded elsewhere), undeploys what is no longer wanted, and forgets what was deleted.
 * Each instance runs its own runners; the store is the only thing they share.
 */
export class DeploymentSync {
  readonly #deps: DeploymentSyncDeps
  readonly #intervalMs: number
  #timer: NodeJS.Timeout | undefined
  #pass: Promise<void> | undefined
  #closed = false

  constructor(deps: DeploymentSyncDeps, options: { readonly intervalMs: number }) {
    this.#deps = deps
    this.#intervalMs = options.intervalMs
  }

  /** Starts following (the first pass after one interval: `reconcile` covered the start). */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return
    this.#timer = setInterval(() => void this.runOnce(), this.#intervalMs)
    this.#timer.unref()
  }

  /** One pass, unless one is running (then that one). Never throws: problems are logged. */
  runOnce(): Promise<void> {
    this.#pass ??= this.#follow()
      .catch((err: unknown) => this.#deps.logger.warn({ err }, 'deployment sync: pass failed'))
      .finally(() => {
        this.#pass = undefined
      })
    return this.#pass
  }

  /** Fetches the files of every model wanted deployed that this server lacks (at start). */
  async installWanted(): Promise<void> {
    for (const model of await this.#deps.metadata.listModelsToReconcile()) {
      if (model.deployment.desired !== 'deployed') continue
      await this.#deps.install(model).catch((err: unknown) => {
        const key = `${model.namespaceId}/${model.modelId}`
        this.#deps.logger.warn({ err, model: key }, 'deployment sync: could not fetch the model')
      })
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    await this.#pass
  }

  async #follow(): Promise<void> {
    const { metadata, deployments, logger } = this.#deps
    // What this server was asked before reading the store: a request here after that (or still
    // being written) is newer than what the store shows, and wins.
    const before = deployments.desiredStates()
    const installed = await this.#deps.installed()
    const rows = await metadata.listDesiredStates()
    const stored = new Map(rows.map((row) => [`${row.namespaceId}/${row.modelId}`, row]))
    const unchanged = (key: string): boolean => {
      const was = before.get(key)
      const now = deployments.desiredStateOf(key)
      if (was === undefined) return now === undefined
      return was.stamp !== undefined && now?.stamp === was.stamp
    }
    // Wanted deployed: deploy what is not deployed here (after fetching the files), redeploy
    // what another instance redeployed since this one loaded it.
    for (const [key, row] of stored) {
      if (this.#closed || row.desired !== 'deployed' || !unchanged(key)) continue
      const here = before.get(key)
      if (here?.desired === 'deployed' && here.generation === undefined) {
        deployments.adoptGeneration(key, row.generation)
        continue
      }
      const redeploy = here?.desired === 'deployed'
      if (redeploy && row.generation <= (here.generation ?? 0)) continue
      try {
        const model = await metadata.findModel(row.namespaceId, row.modelId)
        if (model === undefined || model.deployment.desired !== 'deployed') continue
        if (!redeploy) await this.#deps.install(model)
        if (!unchanged(key) || this.#closed) continue
        await deployments.deploy(model, {
          follow: true,
          reload: redeploy,
          generation: row.generation,
        })
        logger.info(
          { model: key, generation: row.generation },
          redeploy
            ? 'deployment sync: redeploying what another instance redeployed'
            : 'deployment sync: deploying what another instance deployed',
        )
      } catch (err) {
        logger.warn({ err, model: key }, 'deployment sync: could not deploy')
      }
    }
    // Deleted elsewhere: forget it here, whatever its state. No longer wanted: undeploy it.
    for (const [key, { model, desired }] of before) {
      if (this.#closed || !unchanged(key)) continue
      const row = stored.get(key)
      if (row === undefined) {
        // Gone from the listing: make sure (it may have been created after the read).
        if ((await metadata.findModel(model.namespaceId, model.modelId)) !== undefined) continue
        if (!unchanged(key)) continue
        await deployments.remove(model, { follow: true })
        await this.#deps.forget(model)
        logger.info({ model: key }, 'deployment sync: removed what another instance deleted')
      } else if (row.desired === 'not_deployed' && desired === 'deployed') {
        await deployments.undeploy(model, { follow: true })
        logger.info({ model: key }, 'deployment sync: undeploying what another instance undeployed')
      }
    }
    // Files recorded before the read whose model the store no longer holds.
    const known = new Set(rows.map((r) => `${r.namespaceId}/${r.uploadId}`))
    const orphans = installed.filter((key) => !known.has(key))
    if (orphans.length > 0 && !this.#closed) {
      await this.#deps.removeFiles(orphans)
      logger.info({ removed: orphans.length }, 'deployment sync: removed files of deleted models')
    }
  }
}
