import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, readdir } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { join, relative } from 'node:path'
import { PassThrough, type Readable, Transform } from 'node:stream'
import { parseArgs } from 'node:util'
import { createGzip } from 'node:zlib'
import { pack } from 'tar-stream'
import type { Config } from '../config/config.js'
import { ServerRefused, serverTarget, usage } from './server-client.js'

export const UPLOAD_USAGE = `  berth upload PATH --namespace NS --name NAME --version X.Y.Z --format FORMAT
               [--task-type T] [--framework F] [--num-cpus N] [--num-gpus N] [--memory-gb N]
               [--no-deploy] [--url URL] [--api-key KEY]
                                                PATH: a .tar.gz, or a directory packed on the fly`

export interface UploadIo {
  /** Where progress goes; a progress bar is drawn only when it is a terminal. */
  readonly progress: NodeJS.WritableStream & { isTTY?: boolean }
}

/**
 * `berth upload`: streams a model archive (or a directory, packed and gzipped on the fly) to a
 * berth server's upload route and resolves the server's JSON answer. Memory stays flat: nothing
 * is buffered whole. Throws `cli_usage_invalid` for bad arguments; a refused upload rejects with
 * the server's error envelope as `ServerRefused`.
 */
export async function runUploadCommand(
  args: readonly string[],
  config: Config,
  io: UploadIo,
): Promise<Record<string, unknown>> {
  const parsed = parseUploadArgs(args)
  const { url: base, apiKey } = await serverTarget(config, parsed)
  const source = await archiveSource(parsed.path)
  const boundary = `----berth-${randomBytes(12).toString('hex')}`
  const head = Buffer.from(
    [
      ...Object.entries(parsed.fields).map(
        ([name, value]) =>
          `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
      ),
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="model.tar.gz"\r\n` +
        'Content-Type: application/gzip\r\n\r\n',
    ].join(''),
  )
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  const url = new URL(`${base}/v1/namespaces/${encodeURIComponent(parsed.namespace)}/models`)
  const progress = new Progress(io.progress, source.size)
  const body = new PassThrough()
  const headers: Record<string, string | number> = {
    authorization: `Bearer ${apiKey}`,
    'content-type': `multipart/form-data; boundary=${boundary}`,
  }
  // A known size lets the server refuse an oversized archive before it is sent.
  if (source.size !== undefined) headers['content-length'] = head.length + source.size + tail.length

  const answer = send(url, headers, body)
  body.write(head)
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      progress.add(chunk.length)
      callback(null, chunk)
    },
  })
  source.stream.on('error', (err) => body.destroy(err))
  source.stream.pipe(meter).pipe(body, { end: false })
  meter.on('end', () => body.end(tail))
  try {
    const { status, json } = await answer
    progress.done()
    if (status !== 200) throw new ServerRefused(status, json)
    return json as Record<string, unknown>
  } catch (err) {
    progress.done()
    source.stream.destroy()
    throw err
  }
}

interface ParsedUpload {
  readonly path: string
  readonly namespace: string
  readonly url: string | undefined
  readonly apiKey: string | undefined
  readonly fields: Readonly<Record<string, string>>
}

function parseUploadArgs(args: readonly string[]): ParsedUpload {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(args)
  } catch (err) {
    throw usage(err instanceof Error ? err.message : String(err))
  }
  const { values, positionals } = parsed
  const [path] = positionals
  if (positionals.length !== 1 || path === undefined)
    throw usage('berth upload needs exactly one PATH')
  for (const flag of ['namespace', 'name', 'version', 'format'] as const) {
    if (values[flag] === undefined) throw usage(`berth upload needs --${flag}`)
  }
  const optional: Record<string, string | undefined> = {
    task_type: values['task-type'],
    framework: values.framework,
    num_cpus: values['num-cpus'],
    num_gpus: values['num-gpus'],
    memory_gb: values['memory-gb'],
  }
  const fields: Record<string, string> = {
    name: values.name as string,
    version: values.version as string,
    model_format: values.format as string,
    deploy: values['no-deploy'] === true ? 'false' : 'true',
  }
  for (const [name, value] of Object.entries(optional))
    if (value !== undefined) fields[name] = value
  return {
    path,
    namespace: values.namespace as string,
    url: values.url,
    apiKey: values['api-key'],
    fields,
  }
}

function parse(args: readonly string[]) {
  return parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      namespace: { type: 'string' },
      name: { type: 'string' },
      version: { type: 'string' },
      format: { type: 'string' },
      'task-type': { type: 'string' },
      framework: { type: 'string' },
      'num-cpus': { type: 'string' },
      'num-gpus': { type: 'string' },
      'memory-gb': { type: 'string' },
      'no-deploy': { type: 'boolean' },
      url: { type: 'string' },
      'api-key': { type: 'string' },
    },
  })
}

/** A `.tar.gz` streamed as is, or a directory packed and gzipped as it streams. */
async function archiveSource(
  path: string,
): Promise<{ stream: Readable; size: number | undefined }> {
  const info = await lstat(path).catch(() => undefined)
  if (info === undefined) throw usage(`${path} does not exist`)
  if (info.isFile()) {
    return { stream: createReadStream(path, { highWaterMark: 1024 * 1024 }), size: info.size }
  }
  if (!info.isDirectory()) throw usage(`${path} is neither a file nor a directory`)

  const files: string[] = []
  for (const entry of await readdir(path, { recursive: true, withFileTypes: true })) {
    const full = join(entry.parentPath, entry.name)
    if (entry.isSymbolicLink())
      throw usage(`${full} is a symbolic link; berth refuses links in archives`)
    if (entry.isFile()) files.push(full)
  }
  files.sort()
  const tar = pack()
  const gzip = createGzip()
  tar.pipe(gzip)
  void (async () => {
    try {
      for (const file of files) {
        const { size } = await lstat(file)
        await new Promise<void>((resolve, reject) => {
          const entry = tar.entry({ name: relative(path, file), size }, (err) =>
            err ? reject(err) : resolve(),
          )
          const input = createReadStream(file)
          input.on('error', reject)
          // Node's pipe honours the tar entry's backpressure, so one file at a time streams.
          input.pipe(entry as unknown as NodeJS.WritableStream)
        })
      }
      tar.finalize()
    } catch (err) {
      gzip.destroy(err as Error)
    }
  })()
  return { stream: gzip, size: undefined }
}

function send(
  url: URL,
  headers: Record<string, string | number>,
  body: Readable,
): Promise<{ status: number; json: unknown }> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) })
        } catch {
          reject(new Error(`the server answered ${res.statusCode} with a non-JSON body`))
        }
        // The server may answer before reading the whole body (401, 413…): stop sending and
        // close the connection, or the unsent rest keeps the process waiting forever.
        body.unpipe(req)
        body.destroy()
        req.destroy()
      })
    })
    req.on('error', reject)
    body.pipe(req)
  })
}

/** Bytes sent, rate and ETA, redrawn at most 10 times a second on a terminal. */
class Progress {
  readonly #out: UploadIo['progress']
  readonly #total: number | undefined
  readonly #started = Date.now()
  #sent = 0
  #drawn = 0

  constructor(out: UploadIo['progress'], total: number | undefined) {
    this.#out = out
    this.#total = total
  }

  add(bytes: number): void {
    this.#sent += bytes
    const now = Date.now()
    if (this.#out.isTTY === true && now - this.#drawn >= 100) {
      this.#drawn = now
      this.#out.write(`\r${this.#line(now)}\u001b[K`)
    }
  }

  done(): void {
    if (this.#out.isTTY === true) this.#out.write(`\r${this.#line(Date.now())}\u001b[K\n`)
  }

  #line(now: number): string {
    const seconds = Math.max((now - this.#started) / 1000, 0.001)
    const rate = this.#sent / seconds
    const mib = (n: number) => `${(n / 1024 ** 2).toFixed(1)} MiB`
    if (this.#total === undefined || this.#total === 0) {
      return `uploading ${mib(this.#sent)} at ${mib(rate)}/s`
    }
    const fraction = Math.min(this.#sent / this.#total, 1)
    const width = 30
    const bar = '#'.repeat(Math.round(fraction * width)).padEnd(width, '.')
    const eta = rate > 0 ? Math.ceil((this.#total - this.#sent) / rate) : 0
    return `[${bar}] ${(fraction * 100).toFixed(0)}% ${mib(this.#sent)}/${mib(this.#total)} ${mib(rate)}/s ETA ${eta}s`
  }
}
