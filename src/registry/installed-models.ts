import { stat } from 'node:fs/promises'
import { inspectArchive } from '../archives/archive-inspector.js'
import type { ArchiveLimits } from '../archives/archive-limits.js'
import type { ArchiveWorkspace } from '../archives/archive-workspace.js'
import type { ArtifactKey, ArtifactStore } from '../artifacts/artifact-store.js'
import { installKey, type Model, modelKey } from '../domain/model.js'
import type { ArchiveSource } from '../domain/serving-plan.js'
import { BerthError } from '../errors/berth-error.js'
import type { ModelRecords } from '../metadata/metadata-store.js'

export interface InstalledModelsDeps {
  readonly workspace: ArchiveWorkspace
  readonly artifacts: Pick<ArtifactStore, 'get' | 'presignGet'>
  readonly metadata: Pick<ModelRecords, 'listModels'>
}

export interface InstalledModelsOptions {
  readonly maxArchiveBytes: number
  readonly archiveLimits: ArchiveLimits
}

/** The model a folder of unpacked files belongs to. */
type InstallKey = Pick<Model, 'namespaceId' | 'uploadId'>

/**
 * This server's unpacked model files (`models/{namespaceId}/{uploadId}`): a cache of the archives
 * in the artifact store, which stay the source of truth. Uploads install into it; models
 * uploaded or deleted through another instance are fetched or forgotten here; folders no model
 * record owns are removed.
 */
export class InstalledModels {
  readonly #deps: InstalledModelsDeps
  readonly #options: InstalledModelsOptions
  /** `namespaceId/uploadId` of models whose files are installed and whose record is not yet. */
  readonly #installing = new Set<string>()
  /** `installLocally` calls in progress, by the model's folder. */
  readonly #fetching = new Map<string, Promise<void>>()

  constructor(deps: InstalledModelsDeps, options: InstalledModelsOptions) {
    this.#deps = deps
    this.#options = options
  }

  /** Where the model's unpacked files are. */
  dirOf(model: InstallKey): string {
    return this.#deps.workspace.modelDir(model.namespaceId, model.uploadId)
  }

  /**
   * Marks the model's folder as installed ahead of its record, until the returned function is
   * called: meanwhile `recordedInstalls` leaves it out, so it is not taken for a deleted model's.
   */
  beginInstall(model: InstallKey): () => void {
    const key = installKey(model)
    this.#installing.add(key)
    return () => {
      this.#installing.delete(key)
    }
  }

  /** Moves an unpacked, validated folder into place as the model's files (a rename). */
  async install(unpackedRoot: string, model: InstallKey): Promise<void> {
    await this.#deps.workspace.install(unpackedRoot, model.namespaceId, model.uploadId)
  }

  /**
   * Where a runner that cannot see this server's files fetches the model: its archive, by a URL
   * the artifact store signs for `validMs` (at least a second), with what to check it against.
   * Throws `artifacts_unavailable` where the store cannot sign one (the file store).
   */
  async archiveSource(model: Model, validMs: number): Promise<ArchiveSource> {
    const seconds = Math.max(1, Math.ceil(validMs / 1000))
    const url = await this.#deps.artifacts.presignGet(model.archive.key as ArtifactKey, seconds)
    if (url === undefined) {
      throw new BerthError(
        'artifacts_unavailable',
        'runners fetch models from the artifact store, and this one cannot sign a download URL (an S3 store can)',
      )
    }
    return {
      url,
      sha256: model.archive.sha256,
      maxArchiveBytes: this.#options.maxArchiveBytes,
      limits: this.#options.archiveLimits,
    }
  }

  /**
   * Makes sure this server has the model's unpacked files: a model uploaded through another
   * instance is fetched from the artifact store, checked against its recorded SHA-256, and
   * unpacked with the same limits as an upload. Throws `stored_archive_corrupt` when the stored
   * archive is not the one recorded, the artifact store's errors when it is missing, and the
   * archive codes of an upload.
   */
  installLocally(model: Model): Promise<void> {
    // One fetch per model at a time: a deploy and the follower (an on-demand model uploaded
    // elsewhere) may ask at once, and two unpacks renamed onto one folder would collide.
    const key = this.dirOf(model)
    let fetching = this.#fetching.get(key)
    if (fetching === undefined) {
      fetching = this.#fetch(model).finally(() => this.#fetching.delete(key))
      this.#fetching.set(key, fetching)
    }
    return fetching
  }

  async #fetch(model: Model): Promise<void> {
    const { workspace, artifacts } = this.#deps
    const target = this.dirOf(model)
    if (await exists(target)) return
    const staged = await workspace.stage(
      await artifacts.get(model.archive.key as ArtifactKey),
      this.#options.maxArchiveBytes,
    )
    const unpackDir = await workspace.newUnpackDir()
    try {
      if (staged.sha256 !== model.archive.sha256) {
        throw new BerthError(
          'stored_archive_corrupt',
          `the stored archive of ${modelKey(model)} does not match its recorded SHA-256`,
          { details: { namespace_id: model.namespaceId, model_id: model.modelId } },
        )
      }
      const inspected = await inspectArchive(staged.path, unpackDir, this.#options.archiveLimits)
      // Another pass may have installed it meanwhile: keep the first.
      if (!(await exists(target))) await this.install(inspected.root, model)
    } finally {
      await workspace.remove(staged.path)
      await workspace.remove(unpackDir)
    }
  }

  /** Removes this server's unpacked files of the model. Idempotent. */
  async forgetLocally(model: InstallKey): Promise<void> {
    await this.#deps.workspace.remove(this.dirOf(model))
  }

  /**
   * Removes installed model folders that no model record owns (a crash between installing the
   * files and recording the model, or during a delete), if untouched for `olderThanMs`.
   * Resolves how many were removed. Run at start.
   */
  async removeOrphanedFiles(olderThanMs: number, now = Date.now()): Promise<number> {
    const owned = new Map<string, Set<string>>()
    let removed = 0
    for (const dir of await this.#deps.workspace.listInstalled()) {
      if (now - dir.modifiedMs <= olderThanMs) continue
      let uploads = owned.get(dir.namespaceId)
      if (uploads === undefined) {
        const models = await this.#deps.metadata.listModels(dir.namespaceId)
        uploads = new Set(models.map((m) => m.uploadId))
        owned.set(dir.namespaceId, uploads)
      }
      if (!uploads.has(dir.uploadId)) {
        await this.forgetLocally(dir)
        removed += 1
      }
    }
    return removed
  }

  /**
   * The installed model folders (`namespaceId/uploadId`) whose model was recorded before this
   * call: folders of an upload or enable still in progress are left out.
   */
  async recordedInstalls(): Promise<string[]> {
    const installing = new Set(this.#installing)
    return (await this.#deps.workspace.listInstalled())
      .map(installKey)
      .filter((key) => !installing.has(key))
  }

  /** Removes installed model folders (`namespaceId/uploadId` keys). */
  async removeInstalls(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      const [namespaceId = '', uploadId = ''] = key.split('/')
      await this.forgetLocally({ namespaceId, uploadId })
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}
