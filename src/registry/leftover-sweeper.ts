import type { Logger } from 'pino'
import type { ArchiveWorkspace } from '../archives/archive-workspace.js'
import type { ArtifactStore } from '../artifacts/artifact-store.js'
import type { ModelRecords } from '../metadata/metadata-store.js'
import type { InstalledModels } from './installed-models.js'

/**
 * The keys berth writes: a namespace's or an organization's upload archive, and the file store's
 * temp file of a put under way. Nothing else in the store is considered, whatever its age: the
 * bucket or folder may hold other things.
 */
const BERTH_KEY =
  /^(ns_[0-9a-f]{20}|org\/org_[0-9a-f]{20})\/(upl_[0-9a-f]{20}\.tar\.gz|\.tmp-[A-Za-z0-9-]+)$/

export interface LeftoverSweeperDeps {
  readonly workspace: Pick<ArchiveWorkspace, 'sweepUnowned'>
  readonly installed: Pick<InstalledModels, 'removeOrphanedFiles'>
  readonly artifacts: Pick<ArtifactStore, 'list' | 'delete'>
  readonly metadata: Pick<ModelRecords, 'listArchiveKeys'>
  readonly logger: Logger
}

export interface LeftoverSweeperOptions {
  /**
   * How long an archive no record holds is kept. The artifact store may be shared with other
   * instances, whose uploads store an archive a moment before recording it: only an archive
   * older than this is a crash's leftover.
   */
  readonly archiveGraceMs: number
  readonly intervalMs: number
  readonly now?: () => number
}

/** What one sweep removed. */
export interface Swept {
  /** Entries of tmp/ no live request owned. */
  readonly tmp: number
  /** Installed model folders no record owned (at start only). */
  readonly installed: number
  /** Archives no record held. */
  readonly archives: number
}

/**
 * Removes what a crash (or a failed cleanup) left between two writes that belong together: temp
 * files of uploads no live request owns, installed model folders no record owns, and archives no
 * record holds. At start, before any request, then every `intervalMs`. Deleting what a record
 * still needs is the one thing it must never do: an archive is listed before the keys the
 * records hold are read, so one recorded meanwhile is seen as held.
 */
export class LeftoverSweeper {
  readonly #deps: LeftoverSweeperDeps
  readonly #options: LeftoverSweeperOptions
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined
  #pass: Promise<unknown> | undefined
  #closed = false

  constructor(deps: LeftoverSweeperDeps, options: LeftoverSweeperOptions) {
    this.#deps = deps
    this.#options = options
    this.#now = options.now ?? Date.now
  }

  /**
   * The sweep at start: this server holds the data directory's lock and takes no request yet,
   * so nothing in tmp/ or models/ is in use, however fresh.
   */
  async atStart(): Promise<Swept> {
    const swept = {
      tmp: await this.#deps.workspace.sweepUnowned(),
      installed: await this.#deps.installed.removeOrphanedFiles(Number.NEGATIVE_INFINITY),
      archives: await this.#sweepArchives(this.#options.archiveGraceMs),
    }
    this.#report(swept)
    return swept
  }

  /** Sweeps every `intervalMs` until closed. */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return
    this.#timer = setInterval(() => void this.runOnce(), this.#options.intervalMs)
    this.#timer.unref()
  }

  /**
   * One periodic sweep (tmp/ and archives; installed folders are the deployment sync's), unless
   * one is running. Never throws: problems are logged.
   */
  runOnce(): Promise<unknown> {
    this.#pass ??= (async () => {
      const swept = {
        tmp: await this.#deps.workspace.sweepUnowned(),
        installed: 0,
        // While requests run, never less than an interval: this server's own upload may have
        // stored its archive and not yet recorded it.
        archives: await this.#sweepArchives(
          Math.max(this.#options.archiveGraceMs, this.#options.intervalMs),
        ),
      }
      this.#report(swept)
    })()
      .catch((err: unknown) => this.#deps.logger.warn({ err }, 'leftover sweep failed'))
      .finally(() => {
        this.#pass = undefined
      })
    return this.#pass
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    await this.#pass
  }

  async #sweepArchives(graceMs: number): Promise<number> {
    const { artifacts, metadata } = this.#deps
    const cutoff = this.#now() - graceMs
    const old = []
    for await (const object of artifacts.list()) {
      if (object.modifiedMs < cutoff && BERTH_KEY.test(object.key)) old.push(object.key)
    }
    if (old.length === 0) return 0
    const held = await metadata.listArchiveKeys()
    let removed = 0
    for (const key of old) {
      if (this.#closed) break
      if (held.has(key)) continue
      await artifacts.delete(key)
      removed += 1
    }
    return removed
  }

  #report(swept: Swept): void {
    if (swept.tmp + swept.installed + swept.archives === 0) return
    this.#deps.logger.info(swept, 'removed what no live request or record owns')
  }
}
