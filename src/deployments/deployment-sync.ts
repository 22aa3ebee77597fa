import type { Logger } from 'pino'
import { installKey, type Model, type ModelRef, modelKey } from '../domain/model.js'
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
 * Several berth instances on one database: each follows the desired states recorded there,
 * level-triggered. Every `intervalMs` it lists the stored desired states and redeploy
 * generations, and for every model whose deployment here may differ asks the deployment manager
 * to bring it in line (which reads the model afresh first): deploy (fetching the model's files
 * when it was uploaded elsewhere), redeploy, undeploy, or forget what was deleted. Each instance
 * runs its own runners; the store is the only thing they share.
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
        const key = modelKey(model)
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
    const installed = await this.#deps.installed()
    const rows = await metadata.listDesiredStates()
    const stored = new Map(rows.map((row) => [modelKey(row), row]))
    // Every stored model, and every model managed here (one missing from the store was deleted).
    const models = new Map<string, ModelRef>(stored)
    for (const model of deployments.managed()) {
      if (!models.has(modelKey(model))) models.set(modelKey(model), model)
    }
    const hooks = { install: this.#deps.install, forget: this.#deps.forget }
    for (const [key, ref] of models) {
      if (this.#closed) return
      const row = stored.get(key)
      // The listing may be stale: `follow` reads the model again before it acts.
      if (!deployments.differs(ref, row)) continue
      try {
        const followed = await deployments.follow(ref, row, hooks)
        if (followed !== 'unchanged' && followed !== 'adopted' && followed !== 'busy') {
          logger.info({ model: key }, `deployment sync: ${followed} as another instance asked`)
        }
      } catch (err) {
        logger.warn({ err, model: key }, 'deployment sync: could not follow')
      }
    }
    // Files recorded before the read whose model the store no longer holds.
    const known = new Set(rows.map(installKey))
    const orphans = installed.filter((key) => !known.has(key))
    if (orphans.length > 0 && !this.#closed) {
      await this.#deps.removeFiles(orphans)
      logger.info({ removed: orphans.length }, 'deployment sync: removed files of deleted models')
    }
  }
}
