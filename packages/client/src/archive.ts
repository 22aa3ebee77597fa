import { createReadStream } from 'node:fs'
import { lstat, open, readdir } from 'node:fs/promises'
import { basename, join, relative } from 'node:path'
import { type Readable, Transform } from 'node:stream'
import { createGzip } from 'node:zlib'
import { pack } from 'tar-stream'

/** A local path that cannot be uploaded: missing, a link, or neither a file nor a folder. */
export class BerthInputError extends Error {
  override readonly name = 'BerthInputError'
  readonly code: 'path_not_found' | 'path_is_link' | 'path_unsupported'

  constructor(code: BerthInputError['code'], message: string) {
    super(message)
    this.code = code
  }
}

/** What an upload sends, and how much of its source has been read so far. */
export interface PreparedArchive {
  /** The `.tar.gz` bytes, streamed: nothing is held whole. */
  readonly stream: Readable
  /** The bytes `stream` will give, when known ahead (a `.tar.gz` sent as it is). */
  readonly archiveBytes: number | undefined
  /** The bytes of the source: the archive's, or the files' to be packed. */
  readonly sourceBytes: number
  /** The source bytes read so far. */
  sourceRead(): number
}

const GZIP_MAGIC = [0x1f, 0x8b]

/**
 * An upload from a path: a `.tar.gz` as it is; a `.tar` gzipped as it streams; a folder packed and
 * gzipped as it streams (links refused: berth refuses them in archives); any other file (a bare
 * `model.onnx`, say) packed alone into an archive that holds just it.
 */
export async function archiveFrom(path: string): Promise<PreparedArchive> {
  const info = await lstat(path).catch(() => undefined)
  if (info === undefined) throw new BerthInputError('path_not_found', `${path} does not exist`)
  if (info.isSymbolicLink()) {
    throw new BerthInputError('path_is_link', `${path} is a symbolic link; give what it points to`)
  }
  if (info.isDirectory()) return packed(await filesOf(path))
  if (!info.isFile()) {
    throw new BerthInputError('path_unsupported', `${path} is neither a file nor a folder`)
  }
  const head = await readHead(path)
  if (head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]) {
    const meter = new SourceMeter()
    return {
      stream: chained(createReadStream(path, { highWaterMark: 1024 * 1024 }), meter),
      archiveBytes: info.size,
      sourceBytes: info.size,
      sourceRead: () => meter.bytes,
    }
  }
  if (head.subarray(257, 262).toString('latin1') === 'ustar') {
    const meter = new SourceMeter()
    return {
      stream: chained(createReadStream(path, { highWaterMark: 1024 * 1024 }), meter, createGzip()),
      archiveBytes: undefined,
      sourceBytes: info.size,
      sourceRead: () => meter.bytes,
    }
  }
  return packed([{ path, name: basename(path), size: info.size }])
}

/**
 * `first` piped through `rest`, as one stream: an error anywhere ends the last one with it, and
 * ending the last one (an upload stopped early) closes the file.
 */
function chained(first: Readable, ...rest: Transform[]): Readable {
  const streams: Readable[] = [first, ...rest]
  let last: Readable = first
  for (const next of rest) last = last.pipe(next)
  for (const stream of streams) {
    stream.on('error', (err) => {
      for (const other of streams) other.destroy(other === last ? err : undefined)
    })
  }
  last.on('close', () => {
    for (const stream of streams) stream.destroy()
  })
  return last
}

interface SourceFile {
  readonly path: string
  /** Its name in the archive. */
  readonly name: string
  readonly size: number
}

async function filesOf(folder: string): Promise<SourceFile[]> {
  const files: SourceFile[] = []
  for (const entry of await readdir(folder, { recursive: true, withFileTypes: true })) {
    const full = join(entry.parentPath, entry.name)
    if (entry.isSymbolicLink()) {
      throw new BerthInputError(
        'path_is_link',
        `${full} is a symbolic link; berth refuses links in archives`,
      )
    }
    if (entry.isFile()) {
      files.push({ path: full, name: relative(folder, full), size: (await lstat(full)).size })
    }
  }
  return files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/**
 * Files packed into a tar and gzipped as they stream, one file at a time. Whoever reads `stream`
 * may stop (the server answered early, or is gone): packing then stops, quietly.
 */
function packed(files: readonly SourceFile[]): PreparedArchive {
  const tar = pack()
  const gzip = createGzip()
  tar.pipe(gzip)
  const meter = new SourceMeter()
  let stopped = false
  gzip.on('close', () => {
    stopped = true
    tar.destroy()
  })
  // The pack fails only because its reader went ("Writable stream closed"): packing has stopped,
  // and the upload's own answer (or error) says why.
  tar.on('error', () => undefined)
  void (async () => {
    try {
      for (const file of files) {
        if (stopped) return
        await new Promise<void>((resolve, reject) => {
          const input = createReadStream(file.path)
          const fail = (err: Error) => {
            input.destroy()
            reject(err)
          }
          const entry = tar.entry({ name: file.name, size: file.size }, (err) =>
            err ? fail(err) : resolve(),
          )
          entry.on('error', fail)
          input.on('error', fail)
          // pipe honours the tar entry's backpressure: one file streams at a time.
          input.pipe(new SourceMeter(meter)).pipe(entry as unknown as NodeJS.WritableStream)
        })
      }
      tar.finalize()
    } catch (err) {
      if (!stopped) gzip.destroy(err as Error)
    }
  })()
  return {
    stream: gzip,
    archiveBytes: undefined,
    sourceBytes: files.reduce((n, f) => n + f.size, 0),
    sourceRead: () => meter.bytes,
  }
}

/** Counts the bytes that pass (into `total` too, when given). */
class SourceMeter extends Transform {
  bytes = 0
  readonly #total: SourceMeter | undefined

  constructor(total?: SourceMeter) {
    super()
    this.#total = total
  }

  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: (e: null, c: Buffer) => void,
  ) {
    this.bytes += chunk.length
    if (this.#total !== undefined) this.#total.bytes += chunk.length
    done(null, chunk)
  }
}

async function readHead(path: string): Promise<Buffer> {
  const handle = await open(path, 'r')
  try {
    const head = Buffer.alloc(512)
    const { bytesRead } = await handle.read(head, 0, 512, 0)
    return head.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}
