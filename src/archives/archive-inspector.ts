import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { type Readable, Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { type Header, extract as tarExtract } from 'tar-stream'
import type { ManifestFile } from '../domain/manifest.js'
import { BerthError, isBerthError } from '../errors/berth-error.js'
import type { ErrorCode } from '../errors/error-codes.js'
import type { ArchiveLimits } from './archive-limits.js'

export interface InspectedArchive {
  /** Directory holding the files, after a single wrapping folder was stripped. */
  readonly root: string
  /** Every regular file, sorted by path, relative to `root`. */
  readonly files: readonly ManifestFile[]
  readonly unpackedBytes: number
}

/**
 * Bounds on entry names, in UTF-8 bytes as the filesystem counts them: a segment over NAME_MAX
 * (255), or a path that with the data dir in front would pass PATH_MAX (4096), would fail in
 * `open()` with ENAMETOOLONG, a server error, instead of being refused.
 */
const MAX_PATH_BYTES = 1024
const MAX_SEGMENT_BYTES = 255
const GZIP_MAGIC = [0x1f, 0x8b]
// zlib's 16 KiB default makes tens of thousands of small writes per GiB; measured in bench/.
const IO_CHUNK = 1024 * 1024

/**
 * Reads an untrusted `.tar.gz` file once, streaming, as `inspectArchiveStream` does.
 */
export function inspectArchive(
  archivePath: string,
  destination: string,
  limits: ArchiveLimits,
): Promise<InspectedArchive> {
  return inspectArchiveStream(
    createReadStream(archivePath, { highWaterMark: IO_CHUNK }),
    destination,
    limits,
  )
}

/**
 * Reads an untrusted `.tar.gz` once, as it streams in: checks every entry (only regular files
 * and directories; no absolute, `..`, duplicate or odd paths; bounded count, size and
 * compression ratio) and extracts the files into `destination`, a new empty directory, hashing
 * each one. Throws a 400 `archive_*` error at the first problem, without reading further (the
 * source is destroyed); what was extracted stays for the caller to delete. Never follows or
 * creates links, so nothing is written outside `destination`.
 */
export async function inspectArchiveStream(
  source: Readable,
  destination: string,
  limits: ArchiveLimits,
): Promise<InspectedArchive> {
  const meter = new ByteMeter(limits)
  const extract = tarExtract()
  const done = pipeline(
    source,
    gzipMagic(),
    meter.compressed,
    createGunzip({ chunkSize: IO_CHUNK }),
    meter.unpacked,
    extract,
  )
  // Errors surface through the iterator below; this keeps the promise from going unhandled.
  done.catch(() => undefined)

  const paths = new PathSet()
  const files: ManifestFile[] = []
  let entries = 0
  let declared = 0
  try {
    for await (const entry of extract) {
      const header: Header = entry.header
      entries += 1
      if (entries > limits.maxEntries) {
        throw archiveError('archive_too_many_entries', `more than ${limits.maxEntries} entries`)
      }
      const path = safePath(header.name)
      const type = header.type ?? 'file'
      if (type === 'directory') {
        // `tar -C dir .` starts with "./": the archive's root, nothing to record.
        if (path !== '') paths.addDirectory(path)
        entry.resume()
        continue
      }
      if (path === '') throw archiveError('archive_invalid_path', 'a file entry has an empty name')
      if (type !== 'file' && type !== 'contiguous-file') throw refusedType(type, path)
      paths.addFile(path)
      declared += header.size ?? 0
      if (declared > limits.maxUnpackedBytes) throw unpackedTooLarge(limits)

      const target = join(destination, path)
      await mkdir(dirname(target), { recursive: true })
      files.push({ path, ...(await writeEntry(entry as AsyncIterable<Buffer>, target)) })
    }
    await done
  } catch (err) {
    extract.destroy()
    // The first cause wins: our own refusal, then a limit hit while unpacking, then what broke
    // the stream (gzip or tar), over the "stream destroyed" that the loop saw as a result.
    const upstream = await done.then(
      () => undefined,
      (e: unknown) => e,
    )
    // A premature close is what `destroy()` above did to the pipeline: never the cause.
    const broke =
      (upstream as { code?: unknown } | undefined)?.code === 'ERR_STREAM_PREMATURE_CLOSE'
        ? undefined
        : upstream
    throw translate(isBerthError(err) ? err : (meter.failure ?? broke ?? err))
  }

  if (files.length === 0) throw archiveError('archive_empty', 'the archive holds no files')
  const wrapper = singleWrapper(files)
  return {
    root: wrapper === undefined ? destination : join(destination, wrapper),
    files: files
      .map((f) => (wrapper === undefined ? f : { ...f, path: f.path.slice(wrapper.length + 1) }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    unpackedBytes: files.reduce((sum, f) => sum + f.sizeBytes, 0),
  }
}

/**
 * Copies one entry to `target`, hashing it. The entry is a streamx stream: it is read with
 * async iteration, which ends or throws reliably when the archive is cut short (Node's
 * `pipeline` on it could wait forever, reproduced with a tar truncated inside an entry).
 */
async function writeEntry(
  entry: AsyncIterable<Buffer>,
  target: string,
): Promise<{ sizeBytes: number; sha256: string }> {
  const hash = createHash('sha256')
  let sizeBytes = 0
  // `wx`: never reuse or follow anything already there.
  const file = await open(target, 'wx', 0o644)
  try {
    for await (const chunk of entry) {
      hash.update(chunk)
      sizeBytes += chunk.length
      await file.write(chunk)
    }
  } finally {
    await file.close()
  }
  return { sizeBytes, sha256: hash.digest('hex') }
}

/** Passes the stream on once its first two bytes are gzip's magic; refuses it otherwise. */
function gzipMagic(): Transform {
  const notGzip = () =>
    archiveError('archive_not_gzip', 'the archive is not gzip-compressed (.tar.gz expected)')
  let seen = 0
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      for (let i = 0; seen < GZIP_MAGIC.length && i < chunk.length; i++, seen++) {
        if (chunk[i] !== GZIP_MAGIC[seen]) {
          callback(notGzip())
          return
        }
      }
      callback(null, chunk)
    },
    flush(callback: TransformCallback) {
      callback(seen < GZIP_MAGIC.length ? notGzip() : null)
    },
  })
}

/** Counts bytes on both sides of gunzip and stops a bomb as soon as it shows. */
class ByteMeter {
  compressedBytes = 0
  unpackedBytes = 0
  failure: BerthError | undefined
  readonly compressed: Transform
  readonly unpacked: Transform

  constructor(limits: ArchiveLimits) {
    this.compressed = new Transform({
      transform: (chunk: Buffer, _encoding, callback: TransformCallback) => {
        this.compressedBytes += chunk.length
        callback(null, chunk)
      },
    })
    this.unpacked = new Transform({
      transform: (chunk: Buffer, _encoding, callback: TransformCallback) => {
        this.unpackedBytes += chunk.length
        if (this.unpackedBytes > limits.maxUnpackedBytes) {
          this.failure = unpackedTooLarge(limits)
        } else if (
          this.unpackedBytes > limits.ratioGraceBytes &&
          this.unpackedBytes / Math.max(1, this.compressedBytes) > limits.maxCompressionRatio
        ) {
          this.failure = archiveError(
            'archive_compression_ratio_exceeded',
            `the archive expands more than ${limits.maxCompressionRatio}×: a decompression bomb`,
            { max_ratio: limits.maxCompressionRatio },
          )
        }
        callback(this.failure ?? null, chunk)
      },
    })
  }
}

/** Checks one entry name and returns it normalised (no `.` or empty segments; `''` for the root). */
function safePath(name: string): string {
  if (name.length === 0 || Buffer.byteLength(name) > MAX_PATH_BYTES || name.includes('\0')) {
    throw archiveError(
      'archive_invalid_path',
      'an entry has an empty, overlong or NUL-bearing name',
    )
  }
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name) || name.startsWith('\\')) {
    throw archiveError('archive_absolute_path', 'an entry has an absolute path', { entry: name })
  }
  if (name.includes('\\')) {
    throw archiveError('archive_invalid_path', 'an entry name contains a backslash', {
      entry: name,
    })
  }
  const segments = name.split('/').filter((s) => s !== '' && s !== '.')
  if (segments.includes('..')) {
    throw archiveError('archive_path_traversal', 'an entry path contains ".."', { entry: name })
  }
  if (segments.some((s) => Buffer.byteLength(s) > MAX_SEGMENT_BYTES)) {
    throw archiveError('archive_invalid_path', 'an entry has an overlong name', {
      entry: name.slice(0, 200),
    })
  }
  // Empty for the root itself ("." or "./"); the caller accepts that only for a directory.
  return segments.join('/')
}

/** Paths seen so far: a path is a file or a directory, once. */
class PathSet {
  readonly #files = new Set<string>()
  readonly #directories = new Set<string>()

  addDirectory(path: string): void {
    if (this.#files.has(path)) throw duplicate(path)
    this.#addParents(path)
    this.#directories.add(path)
  }

  addFile(path: string): void {
    if (this.#files.has(path) || this.#directories.has(path)) throw duplicate(path)
    this.#addParents(path)
    this.#files.add(path)
  }

  #addParents(path: string): void {
    const segments = path.split('/')
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join('/')
      if (this.#files.has(parent)) throw duplicate(path)
      this.#directories.add(parent)
    }
  }
}

/** The folder that wraps every file, if there is exactly one and no file sits beside it. */
function singleWrapper(files: readonly ManifestFile[]): string | undefined {
  const first = files[0]?.path.split('/')[0]
  if (first === undefined) return undefined
  const wrapped = files.every((f) => f.path.startsWith(`${first}/`))
  return wrapped ? first : undefined
}

function refusedType(type: string, path: string): BerthError {
  const details = { entry: path, type }
  switch (type) {
    case 'symlink':
      return archiveError('archive_has_symlink', 'the archive holds a symbolic link', details)
    case 'link':
      return archiveError('archive_has_hardlink', 'the archive holds a hard link', details)
    case 'character-device':
    case 'block-device':
      return archiveError('archive_has_device', 'the archive holds a device file', details)
    case 'fifo':
      return archiveError('archive_has_fifo', 'the archive holds a FIFO', details)
    default:
      return archiveError('archive_unsupported_entry', `the archive holds a ${type} entry`, details)
  }
}

function duplicate(path: string): BerthError {
  return archiveError('archive_duplicate_path', 'the archive holds a path twice', { entry: path })
}

function unpackedTooLarge(limits: ArchiveLimits): BerthError {
  return archiveError(
    'archive_unpacked_too_large',
    `the archive unpacks to more than ${limits.maxUnpackedBytes} bytes`,
    { max_unpacked_bytes: limits.maxUnpackedBytes },
  )
}

function archiveError(
  code: ErrorCode,
  message: string,
  details?: Readonly<Record<string, unknown>>,
): BerthError {
  return new BerthError(code, message, details === undefined ? {} : { details })
}

/** zlib and tar-stream failures become the matching archive codes. */
function translate(err: unknown): unknown {
  if (isBerthError(err)) return err
  const code = (err as { code?: unknown }).code
  const message = err instanceof Error ? err.message : ''
  if (code === 'Z_BUF_ERROR' || message === 'Unexpected end of data') {
    return new BerthError('archive_truncated', 'the archive ends before its data does', {
      cause: err,
    })
  }
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new BerthError('archive_not_gzip', 'the gzip data is corrupt', { cause: err })
  }
  // tar-stream has no error codes: its refusals of a header (a checksum, a size that is not a
  // number, a pax or long-name header over its 4 MiB bound) are known by their messages.
  if (
    message.startsWith('Invalid tar header') ||
    message === 'Invalid header' ||
    message === 'Header exceeds max size'
  ) {
    return new BerthError('archive_not_tar', 'the archive is not a tar file', { cause: err })
  }
  return err
}
