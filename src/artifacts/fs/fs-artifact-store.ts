import { randomUUID } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { link, mkdir, readdir, rmdir, stat, unlink } from 'node:fs/promises'
import { dirname, join, relative, resolve, sep } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ArtifactsConfig } from '../../config/config.js'
import { artifactExists, artifactNotFound } from '../artifact-errors.js'
import type { ArtifactKey, ArtifactStore, StoredObject } from '../artifact-store.js'

export type FsArtifactStoreConfig = Extract<ArtifactsConfig, { driver: 'fs' }>

/** What the file store's archive URLs start with; the key follows. */
export const FS_ARCHIVE_URL_PREFIX = 'berth://archives/'

/**
 * Archives as files under one root directory. A put writes a temp file beside the target, then
 * hard-links it into place: `link` fails when the target exists, so an object is never replaced
 * and never seen half-written.
 */
export class FsArtifactStore implements ArtifactStore {
  readonly #root: string

  constructor(config: FsArtifactStoreConfig) {
    this.#root = resolve(config.root)
  }

  async put(key: ArtifactKey, source: Readable): Promise<{ sizeBytes: number }> {
    const target = this.#path(key)
    await mkdir(dirname(target), { recursive: true })
    const temp = join(dirname(target), `.tmp-${randomUUID()}`)
    let stored = false
    try {
      await pipeline(source, createWriteStream(temp, { flags: 'wx', mode: 0o644 }))
      try {
        await link(temp, target)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw artifactExists(key, err)
        throw err
      }
      stored = true
      return { sizeBytes: (await stat(target)).size }
    } finally {
      await unlink(temp).catch(() => undefined)
      if (!stored) await removeIfEmpty(dirname(target))
    }
  }

  async putFile(key: ArtifactKey, path: string): Promise<{ sizeBytes: number }> {
    const target = this.#path(key)
    await mkdir(dirname(target), { recursive: true })
    try {
      // Same filesystem: a hard link is atomic, refuses an existing target, and copies nothing.
      await link(path, target)
      return { sizeBytes: (await stat(target)).size }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST') throw artifactExists(key, err)
      await removeIfEmpty(dirname(target))
      // Another filesystem (or no hard links): copy through a temp file instead.
      if (code === 'EXDEV' || code === 'EPERM' || code === 'ENOTSUP')
        return this.put(key, createReadStream(path))
      throw err
    }
  }

  async get(key: ArtifactKey): Promise<Readable> {
    const path = this.#path(key)
    // Open first, so a missing object fails here rather than inside the caller's pipeline.
    const stream = createReadStream(path)
    await new Promise<void>((resolveOpen, reject) => {
      stream.once('open', () => resolveOpen())
      stream.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' ? artifactNotFound(key, err) : err),
      )
    })
    return stream
  }

  async stat(key: ArtifactKey): Promise<{ sizeBytes: number } | undefined> {
    try {
      return { sizeBytes: (await stat(this.#path(key))).size }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  /** Every file under the root, temp files of interrupted puts (`.tmp-…`) included. */
  async *list(): AsyncIterable<StoredObject> {
    const entries = await readdir(this.#root, { recursive: true, withFileTypes: true }).catch(
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return []
        throw err
      },
    )
    for (const entry of entries) {
      if (!entry.isFile()) continue
      const path = join(entry.parentPath, entry.name)
      const info = await stat(path).catch(() => undefined)
      if (info === undefined) continue
      const key = relative(this.#root, path).split(sep).join('/')
      yield { key: key as ArtifactKey, modifiedMs: info.mtimeMs }
    }
  }

  async delete(key: ArtifactKey): Promise<void> {
    try {
      await unlink(this.#path(key))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    await removeIfEmpty(dirname(this.#path(key)))
  }

  /** Files cannot sign URLs: berth takes the upload itself (an HMAC-signed berth URL). */
  async presignPut(): Promise<undefined> {
    return undefined
  }

  async presignGet(): Promise<undefined> {
    return undefined
  }

  /** `berth://archives/KEY`: the object by its key, never by the server path that holds it. */
  urlOf(key: ArtifactKey): string {
    return `${FS_ARCHIVE_URL_PREFIX}${key}`
  }

  async close(): Promise<void> {}

  #path(key: ArtifactKey): string {
    return join(this.#root, key)
  }
}

/** Removes a folder the store made for a key, once nothing is left in it. */
async function removeIfEmpty(dir: string): Promise<void> {
  await rmdir(dir).catch(() => undefined)
}
