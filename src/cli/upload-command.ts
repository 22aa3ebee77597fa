import { parseArgs } from 'node:util'
import { BerthInputError, type UploadFields, type UploadProgress } from '@berth/client'
import type { Config } from '../config/config.js'
import { clientFor, usage } from './server-client.js'

export const UPLOAD_USAGE = `  berth upload PATH --namespace NS --name NAME --version X.Y.Z --format FORMAT
               [--task-type T] [--framework F] [--num-cpus N] [--num-gpus N] [--memory-gb N]
               [--no-deploy] [--url URL] [--api-key KEY]
                                                PATH: a .tar.gz, a .tar, a folder, or one model
                                                file (packed as it streams)`

export interface UploadIo {
  /** Where progress goes; a progress bar is drawn only when it is a terminal. */
  readonly progress: NodeJS.WritableStream & { isTTY?: boolean }
}

/**
 * `berth upload`: streams a model archive (a `.tar.gz` as it is; a `.tar`, a folder or one model
 * file packed and gzipped on the way) to a berth server's upload route through `@berth/client`,
 * and resolves the server's JSON answer. Memory stays flat: nothing is buffered whole. Throws
 * `cli_usage_invalid` for bad arguments or a path it cannot upload; a refused upload rejects
 * with the server's envelope as `BerthApiError`.
 */
export async function runUploadCommand(
  args: readonly string[],
  config: Config,
  io: UploadIo,
): Promise<Record<string, unknown>> {
  const parsed = parseUploadArgs(args)
  const client = await clientFor(config, parsed)
  const progress = new Progress(io.progress)
  try {
    const answer = await client.upload(parsed.namespace, parsed.path, parsed.fields, {
      onProgress: (p) => progress.draw(p),
    })
    return answer as Record<string, unknown>
  } catch (err) {
    // A path that cannot be uploaded is the command's, not the server's.
    if (err instanceof BerthInputError) throw usage(err.message)
    throw err
  } finally {
    progress.done()
  }
}

interface ParsedUpload {
  readonly path: string
  readonly namespace: string
  readonly url: string | undefined
  readonly apiKey: string | undefined
  readonly fields: UploadFields
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
  const fields: Record<string, string> & UploadFields = {
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

/**
 * Bytes read of the source's total, rate and ETA, redrawn on a terminal (at most 10 times a
 * second, by the client's progress calls); nothing when the output is not one.
 */
class Progress {
  readonly #out: UploadIo['progress']
  #last: UploadProgress | undefined

  constructor(out: UploadIo['progress']) {
    this.#out = out
  }

  draw(progress: UploadProgress): void {
    this.#last = progress
    if (this.#out.isTTY === true) this.#out.write(`\r${line(progress)}\u001b[K`)
  }

  done(): void {
    if (this.#out.isTTY === true && this.#last !== undefined) {
      this.#out.write(`\r${line(this.#last)}\u001b[K\n`)
    }
  }
}

function line(p: UploadProgress): string {
  const seconds = Math.max(p.elapsedMs / 1000, 0.001)
  const rate = p.readBytes / seconds
  const mib = (n: number) => `${(n / 1024 ** 2).toFixed(1)} MiB`
  if (p.sourceBytes === 0) return `uploading ${mib(p.sentBytes)} at ${mib(p.sentBytes / seconds)}/s`
  const fraction = Math.min(p.readBytes / p.sourceBytes, 1)
  const width = 30
  const bar = '#'.repeat(Math.round(fraction * width)).padEnd(width, '.')
  const eta = rate > 0 ? Math.ceil((p.sourceBytes - p.readBytes) / rate) : 0
  return `[${bar}] ${(fraction * 100).toFixed(0)}% ${mib(p.readBytes)}/${mib(p.sourceBytes)} ${mib(rate)}/s ETA ${eta}s`
}
