import { createHash, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import {
  PassThrough,
  type Readable,
  Transform,
  type TransformCallback,
  type Writable,
} from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { BerthError } from '../errors/berth-error.js'
import { type InspectedArchive, inspectArchiveStream } from './archive-inspector.js'
import type { ArchiveLimits } from './archive-limits.js'

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

/** A staged archive that was inspected and unpacked as it arrived. */
export interface UnpackedArchive extends StagedArchive {
  /** The folder it was unpacked into (`inspected.root` is in it). */
  readonly unpackDir: string
  readonly inspected: InspectedArchive
}

/** What the unpacking side of `stageAndUnpack` may hold before the staging side waits for it. */
const TAP_BYTES = 1024 * 1024

/** The size of the blocks staged archives are written (and unpacked) in. */
const IO_BLOCK = 1024 * 1024

/** How long a partial block waits for more bytes before it is passed on as it is. */
const BLOCK_WAIT_MS = 5

/**
 * Gathers a socket's small chunks (some KiB each) into blocks of `IO_BLOCK` bytes: written as
 * they come, a GiB would cost ~100,000 writes on each side and a thread handoff for each
 * (measured in bench/). A partial block goes on after `BLOCK_WAIT_MS` without new bytes, so a
 * slow body is still read, checked and refused as it arrives.
 */
class BlockGatherer extends Transform {
  #chunks: Buffer[] = []
  #bytes = 0
  #timer: NodeJS.Timeout | undefined

  constructor() {
    super({ readableHighWaterMark: IO_BLOCK })
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
    this.#chunks.push(chunk)
    this.#bytes += chunk.length
    if (this.#bytes >= IO_BLOCK) this.#pass()
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#pass(), BLOCK_WAIT_MS)
    }
    callback()
  }

  override _flush(callback: TransformCallback) {
    this.#pass()
    callback()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void) {
    clearTimeout(this.#timer)
    callback(err)
  }

  #pass(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#bytes === 0) return
    this.push(this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks))
    this.#chunks = []
    this.#bytes = 0
  }
}

/** Resolves once `stream` drains, or once it is closed (its reader gone: nothing to wait for). */
function drained(stream: Writable): Promise<void> {
  if (stream.destroyed) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done)
      stream.off('close', done)
      resolve()
    }
    stream.on('drain', done)
    stream.on('close', done)
  })
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
  stage(source: Readable, maxBytes: number): Promise<StagedArchive> {
    return this.#stage(source, maxBytes, undefined)
  }

  /**
   * Stages `source` as `stage` does and, in the same pass, inspects and unpacks it into a new
   * folder (`inspectArchiveStream`): each byte is read from the client once and written once to
   * the archive and once as a file. The first fault stops both at once, before the rest of the
   * body is read: an `archive_*` refusal wins over the stop it causes. Whatever fails, the file
   * and the folder are removed; on success the caller owns both (`remove()` each).
   */
  async stageAndUnpack(
    source: Readable,
    maxBytes: number,
    limits: ArchiveLimits,
  ): Promise<UnpackedArchive> {
    const unpackDir = await this.newUnpackDir()
    const tap = new PassThrough({ highWaterMark: TAP_BYTES })
    const stop = new AbortController()
    let refusal: { readonly reason: unknown } | undefined
    let stagingOver = false
    const inspecting = inspectArchiveStream(tap, unpackDir, limits).catch((err: unknown) => {
      // A refusal while bytes still come stops the staging too: the body is read no further.
      if (!stagingOver) {
        refusal = { reason: err }
        stop.abort(err)
      }
      throw err
    })
    const [staging, inspection] = await Promise.allSettled([
      this.#stage(source, maxBytes, { tap, signal: stop.signal }).finally(() => {
        stagingOver = true
        // Staging that failed leaves the inspection waiting for bytes that will not come.
        if (!tap.writableEnded) tap.destroy()
      }),
      inspecting,
    ])
    if (staging.status === 'fulfilled' && inspection.status === 'fulfilled') {
      return { ...staging.value, unpackDir, inspected: inspection.value }
    }
    if (staging.status === 'fulfilled') await this.remove(staging.value.path)
    await this.remove(unpackDir)
    // The archive's own fault first; then what stopped the staging (a 413, a client gone).
    if (refusal !== undefined) throw refusal.reason
    throw staging.status === 'rejected'
      ? staging.reason
      : (inspection as PromiseRejectedResult).reason
  }

  async #stage(
    source: Readable,
    maxBytes: number,
    also: { readonly tap: Writable; readonly signal: AbortSignal } | undefined,
  ): Promise<StagedArchive> {
    await mkdir(this.#tmp, { recursive: true })
    const path = join(this.#tmp, `upload-${randomUUID()}.tar.gz`)
    this.#live.add(path)
    const hash = createHash('sha256')
    let sizeBytes = 0
    const file = createWriteStream(path, { flags: 'wx', mode: 0o600 })
    const tap = also?.tap
    try {
      await pipeline(
        source,
        new BlockGatherer(),
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            sizeBytes += chunk.length
            if (sizeBytes > maxBytes) {
              callback(archiveTooLarge(maxBytes))
              return
            }
            hash.update(chunk)
            // The slower of the two readers sets the pace: memory stays flat.
            if (tap === undefined || tap.write(chunk)) callback(null, chunk)
            else drained(tap).then(() => callback(null, chunk), callback)
          },
          flush(callback) {
            tap?.end()
            callback()
          },
        }),
        file,
        ...(also === undefined ? [] : [{ signal: also.signal }]),
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
