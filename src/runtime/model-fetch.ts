import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { isAbsolute, join, relative, resolve } from 'node:path'
import { Readable, Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream } from 'node:stream/web'
import { inspectArchive } from '../archives/archive-inspector.js'
import type { ArchiveSource } from '../domain/serving-plan.js'
import { BerthError, isBerthError } from '../errors/berth-error.js'

/**
 * A runner that cannot see berth's model folders (a container on another machine) fetches the
 * model's archive itself: from a presigned URL, checked against the SHA-256 recorded at upload
 * before a byte of it is unpacked, then unpacked with the upload's own checks into a folder of
 * its own. Nothing in the URL or the archive is trusted more than an upload is.
 */

/** What a `load` carries for a runner that fetches: where, what to expect, how big at most. */
export interface FetchOrder extends ArchiveSource {
  /** berth's folder of the model: the load's paths under it are rebased onto the copy. */
  readonly root: string
}

/** A fetched model: its files' folder (the archive's root), and how to remove it all. */
export interface FetchedModel {
  readonly root: string
  /** The folder that holds everything fetched for this load; `remove` deletes it. */
  readonly dir: string
  remove(): Promise<void>
}

/**
 * Downloads the archive at `source.url` into a new folder under `scratch`, checks its size and
 * SHA-256, and unpacks it there. Throws `model_load_failed` when it cannot be downloaded or
 * unpacked and `stored_archive_corrupt` when it is not the archive recorded; either way it
 * leaves nothing behind. Messages never carry the URL (its signature is a credential).
 */
export async function fetchModel(source: ArchiveSource, scratch: string): Promise<FetchedModel> {
  const dir = await mkdtemp(join(scratch, 'model-')).catch((err: unknown) => {
    throw fetchFailed(err)
  })
  const remove = () => rm(dir, { recursive: true, force: true })
  try {
    const archive = join(dir, 'archive.tar.gz')
    await download(source, archive)
    const inspected = await inspectArchive(archive, join(dir, 'files'), source.limits).catch(
      (err: unknown) => {
        throw new BerthError(
          'model_load_failed',
          `the model's archive could not be unpacked: ${isBerthError(err) ? `${err.code}: ${err.message}` : String(err)}`,
          { cause: err },
        )
      },
    )
    await rm(archive, { force: true })
    return { root: inspected.root, dir, remove }
  } catch (err) {
    await remove()
    throw isBerthError(err) ? err : fetchFailed(err)
  }
}

/**
 * A fetch that failed for the runner's own reasons (a connection cut mid-body, a full or
 * unwritable scratch volume): the model cannot load here, as its code says.
 */
function fetchFailed(err: unknown): BerthError {
  return new BerthError(
    'model_load_failed',
    `the runner could not fetch the model's archive: ${reasonOf(err)}`,
    { cause: err },
  )
}

/** An error's own words, or its cause's (fetch says "fetch failed" and puts the reason there). */
function reasonOf(err: unknown): string {
  const cause = err instanceof Error ? ((err.cause as Error | undefined) ?? err) : err
  return cause instanceof Error ? cause.message : String(cause)
}

async function download(source: ArchiveSource, path: string): Promise<void> {
  // A fetch that throws (no connection, a redirect) is fetchModel's `fetchFailed`, cause kept.
  const response = await fetch(source.url, { redirect: 'error' })
  if (!response.ok || response.body === null) {
    await response.body?.cancel()
    throw new BerthError(
      'model_load_failed',
      `the runner could not download the model's archive: the artifact store answered HTTP ${response.status}`,
    )
  }
  const check = new ArchiveCheck(source)
  await pipeline(
    Readable.fromWeb(response.body as ReadableStream<Uint8Array>),
    check,
    createWriteStream(path, { flags: 'wx', mode: 0o600 }),
  )
  check.verify()
}

/** Counts and hashes the bytes as they pass; refuses more than the archive can be. */
class ArchiveCheck extends Transform {
  readonly #source: ArchiveSource
  readonly #hash = createHash('sha256')
  #bytes = 0

  constructor(source: ArchiveSource) {
    super()
    this.#source = source
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#bytes += chunk.length
    if (this.#bytes > this.#source.maxArchiveBytes) {
      done(corrupt(`it is larger than the ${this.#source.maxArchiveBytes} bytes any archive is`))
      return
    }
    this.#hash.update(chunk)
    done(null, chunk)
  }

  verify(): void {
    const sha256 = this.#hash.digest('hex')
    if (sha256 !== this.#source.sha256) {
      throw corrupt(`its SHA-256 is ${sha256}, not the ${this.#source.sha256} recorded at upload`)
    }
  }
}

function corrupt(why: string): BerthError {
  return new BerthError(
    'stored_archive_corrupt',
    `the archive the runner downloaded is not the model's: ${why}`,
  )
}

/**
 * `path` (under berth's model folder `from`) as the same file under `to`. Throws
 * `model_load_failed` for a path outside `from`, `..` included: a load names the model's own
 * files only.
 */
export function rebase(path: string, from: string, to: string): string {
  const inside = relative(resolve(from), resolve(path))
  if (inside.startsWith('..') || isAbsolute(inside)) {
    throw new BerthError('model_load_failed', "the load names a file outside the model's folder")
  }
  return join(to, inside)
}
