import { createHash, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { type Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { BerthError } from '../errors/berth-error.js'

/** 413: the archive is larger than `maxBytes`. */
export function archiveTooLarge(maxBytes: number): BerthError {
  return new BerthError('archive_too_large', `the archive is larger than ${maxBytes} bytes`, {
    details: { max_archive_bytes: maxBytes },
  })
}

/** An uploaded archive on local disk, waiting for validation. */
export interface StagedArchive {
  readonly path: string
  readonly sha256: string
  readonly sizeBytes: number
}

/**
 * Local disk space under the data dir: `tmp/` for archives being uploaded and unpacked, and
 * `models/` for the unpacked files of accepted models (a cache: the archive in the artifact
 * store is the source of truth). Everything berth writes locally for a model goes through here.
 */
export class ArchiveWorkspace {
  readonly #tmp: string
  readonly #models: string
  /** Paths in tmp/ handed out and not yet removed or installed: owned by a live request. */
  readonly #live = new Set<string>()

  constructor(dataDir: string) {
    this.#tmp = resolve(dataDir, 'tmp')
    this.#models = resolve(dataDir, 'models')
  }

  /**
   * Streams `source` to a new temp file, hashing and counting as it goes; memory stays flat.
   * Past `maxBytes`, stops reading and throws `archive_too_large`. The file is removed on any
   * failure; on success the caller owns it and removes it with `remove()`.
   */
  async stage(source: Readable, maxBytes: number): Promise<StagedArchive> {
    await mkdir(this.#tmp, { recursive: true })
    const path = join(this.#tmp, `upload-${randomUUID()}.tar.gz`)
    this.#live.add(path)
    const hash = createHash('sha256')
    let sizeBytes = 0
    const file = createWriteStream(path, { flags: 'wx', mode: 0o600 })
    try {
      await pipeline(
        source,
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            sizeBytes += chunk.length
            if (sizeBytes > maxBytes) {
              callback(archiveTooLarge(maxBytes))
              return
            }
            hash.update(chunk)
            callback(null, chunk)
          },
        }),
        file,
      )
    } catch (err) {
      // A failed pipeline rejects before the file has closed, and its open may not have run yet:
      // removed now, it could be created just after and stay (CI once kept one from a 413). So
      // the removal waits for the close.
      if (!file.closed) await once(file, 'close').catch(() => undefined)
      await this.remove(path)
      throw err
    }
    return { path, sha256: hash.digest('hex'), sizeBytes }
  }

  /** A new, empty folder to unpack an archive into; the caller removes or installs it. */
  async newUnpackDir(): Promise<string> {
    const path = join(this.#tmp, `unpack-${randomUUID()}`)
    this.#live.add(path)
    await mkdir(path, { recursive: true, mode: 0o700 })
    return path
  }

  /** Where the unpacked files of the model from upload `uploadId` live. */
  /** Where the models are installed, one folder per namespace and upload under it. */
  get modelsDir(): string {
    return this.#models
  }

  /** Where uploads are staged and unpacked (an upload's load check reads its model there). */
  get tmpDir(): string {
    return this.#tmp
  }

  modelDir(namespaceId: string, uploadId: string): string {
    return join(this.#models, namespaceId, uploadId)
  }

  /** Moves an unpacked root into place as the model's files (same filesystem: a rename). */
  async install(unpackedRoot: string, namespaceId: string, uploadId: string): Promise<string> {
    const target = this.modelDir(namespaceId, uploadId)
    await mkdir(dirname(target), { recursive: true })
    await rename(unpackedRoot, target)
    this.#live.delete(unpackedRoot)
    return target
  }

  /**
   * Removes what no live request owns in `tmp/`: what a crashed process left (at start, before
   * any request, that is everything), and what a failed cleanup missed. A path handed out by
   * `stage` or `newUnpackDir` is owned until `remove` (or `install`) releases it. Resolves the
   * count removed.
   */
  async sweepUnowned(): Promise<number> {
    const entries = await readdir(this.#tmp).catch(() => [] as string[])
    let removed = 0
    for (const name of entries) {
      const path = join(this.#tmp, name)
      if (this.#live.has(path)) continue
      await rm(path, { recursive: true, force: true })
      removed += 1
    }
    return removed
  }

  /** Every installed model folder, with when it last changed. */
  async listInstalled(): Promise<
    Array<{ namespaceId: string; uploadId: string; modifiedMs: number }>
  > {
    const found: Array<{ namespaceId: string; uploadId: string; modifiedMs: number }> = []
    for (const namespaceId of await readdir(this.#models).catch(() => [] as string[])) {
      for (const uploadId of await readdir(join(this.#models, namespaceId)).catch(
        () => [] as string[],
      )) {
        const info = await stat(join(this.#models, namespaceId, uploadId)).catch(() => undefined)
        if (info !== undefined) found.push({ namespaceId, uploadId, modifiedMs: info.mtimeMs })
      }
    }
    return found
  }

  /** Removes a file or folder this workspace handed out. Idempotent. */
  async remove(path: string): Promise<void> {
    try {
      await rm(path, { recursive: true, force: true })
    } finally {
      this.#live.delete(path)
    }
  }
}
