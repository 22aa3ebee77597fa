import {
  type BerthClient,
  BerthInputError,
  type UploadFields,
  type UploadProgress,
} from '@berth/client'
import { settledAnswer, watch } from './client-commands.js'
import type { Rendered } from './output.js'
import { usage } from './server-client.js'

/** The serving settings an upload or a deploy takes, as flags (checked and parsed by them). */
export interface ServingFlags {
  readonly replicas?: number
  readonly maxBatchSize?: number
  readonly maxQueueDelayUs?: number
  readonly idleTimeout?: number
  readonly loadPolicy?: string
  readonly nodeSelector?: Record<string, unknown>
}

/** `berth upload`'s flags, as commander gives them. */
export interface UploadFlags extends ServingFlags {
  readonly namespace: string
  readonly name: string
  readonly version: string
  readonly format: string
  readonly taskType?: string
  readonly framework?: string
  readonly numCpus?: number
  readonly numGpus?: number
  readonly memoryGb?: number
  /** `--no-deploy` makes it false. */
  readonly deploy: boolean
  readonly wait?: boolean
}

/**
 * `berth upload`: streams a model archive (a `.tar.gz` as it is; a `.tar`, a folder or one model
 * file packed and gzipped on the way) to the server through `@berth/client`, drawing progress on
 * a terminal, and with `--wait` follows the deployment until it settles. Memory stays flat.
 * Throws `cli_usage_invalid` for a path it cannot upload; a refusal is the client's
 * `BerthApiError`, with the server's envelope.
 */
export async function upload(
  client: BerthClient,
  path: string,
  flags: UploadFlags,
  progress: NodeJS.WritableStream & { isTTY?: boolean },
): Promise<Rendered> {
  const bar = new Progress(progress)
  let answer: Awaited<ReturnType<BerthClient['upload']>>
  try {
    answer = await client.upload(flags.namespace, path, fieldsOf(flags), {
      onProgress: (p) => bar.draw(p),
    })
  } catch (err) {
    // A path that cannot be uploaded is the command's, not the server's.
    if (err instanceof BerthInputError) throw usage(err.message)
    throw err
  } finally {
    bar.done()
  }
  const human = `uploaded ${answer.model_id} into ${flags.namespace}: ${answer.deployment_status}\n`
  if (flags.wait !== true || !flags.deploy) return { json: answer, human }
  const { deployment, failed } = await watch(
    client,
    flags.namespace,
    answer.model_id,
    undefined,
    progress,
  )
  return {
    json: settledAnswer(answer, deployment),
    human: `uploaded ${answer.model_id} into ${flags.namespace}: ${deployment.state} (${deployment.reason})\n`,
    failed,
  }
}

/** The serving flags given, by their API field names: a deploy's body, part of an upload's form. */
export function servingFields(flags: ServingFlags) {
  return defined({
    replicas: flags.replicas,
    max_batch_size: flags.maxBatchSize,
    max_queue_delay_us: flags.maxQueueDelayUs,
    idle_timeout_s: flags.idleTimeout,
    load_policy: flags.loadPolicy as 'eager' | 'on_demand' | undefined,
    node_selector: flags.nodeSelector as Record<string, string> | undefined,
  })
}

/** The upload form's fields from the flags given. */
function fieldsOf(flags: UploadFlags): UploadFields {
  return {
    name: flags.name,
    version: flags.version,
    model_format: flags.format,
    deploy: flags.deploy,
    ...defined({
      task_type: flags.taskType,
      framework: flags.framework,
      num_cpus: flags.numCpus,
      num_gpus: flags.numGpus,
      memory_gb: flags.memoryGb,
    }),
    ...servingFields(flags),
  } as UploadFields
}

/** `fields` without the ones left unset. */
function defined<T extends Record<string, unknown>>(fields: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(fields).filter(([, value]) => value !== undefined),
  ) as Partial<T>
}

/**
 * Bytes read of the source's total, rate and ETA, redrawn on a terminal (at most 10 times a
 * second, by the client's progress calls); nothing when the output is not one.
 */
class Progress {
  readonly #out: NodeJS.WritableStream & { isTTY?: boolean }
  #last: UploadProgress | undefined

  constructor(out: NodeJS.WritableStream & { isTTY?: boolean }) {
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
