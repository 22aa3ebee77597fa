import { availableParallelism, totalmem } from 'node:os'
import { join } from 'node:path'
import { BerthError } from '../errors/berth-error.js'
import {
  type ArtifactsConfig,
  type Config,
  LOG_LEVELS,
  type MetadataConfig,
  type SchedulerConfig,
} from './config.js'

/** Environment variables, as the process received them. */
export type Env = Readonly<Record<string, string | undefined>>

/**
 * Reads one value at a time, recording every problem instead of stopping at the first, so a
 * misconfigured start lists everything that is wrong in one go.
 */
class EnvReader {
  readonly problems: string[] = []
  readonly #env: Env

  constructor(env: Env) {
    this.#env = env
  }

  raw(name: string): string | undefined {
    const value = this.#env[name]
    return value === undefined || value.trim() === '' ? undefined : value.trim()
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name)
    if (value === undefined) return fallback
    const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max}, got "${value}"`)
      return fallback
    }
    return parsed
  }

  number(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name)
    if (value === undefined) return fallback
    const parsed = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN
    if (!Number.isFinite(parsed) || parsed < min || parsed > max) {
      this.problems.push(`${name} must be a number from ${min} to ${max}, got "${value}"`)
      return fallback
    }
    return parsed
  }

  bool(name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase()
    if (value === undefined) return fallback
    if (['1', 'true', 'yes'].includes(value)) return true
    if (['0', 'false', 'no'].includes(value)) return false
    this.problems.push(`${name} must be true or false, got "${value}"`)
    return fallback
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const value = this.raw(name)
    if (value === undefined) return fallback
    if (!(allowed as readonly string[]).includes(value)) {
      this.problems.push(`${name} must be one of ${allowed.join(', ')}, got "${value}"`)
      return fallback
    }
    return value as T
  }
}

const MAX_PORT = 65_535
const TEN_GIB = 10 * 1024 ** 3

/** What the machine has, detected by the caller; the node capacity defaults to it. */
export interface HostFacts {
  readonly cpus: number
  readonly memoryBytes: number
}

const GIB = 1024 ** 3

/** This machine's CPUs and memory. */
export function detectHost(): HostFacts {
  return { cpus: availableParallelism(), memoryBytes: totalmem() }
}

/**
 * Turns the environment into berth's configuration. Pure: `main.ts` passes the process environment,
 * tests pass a literal. Every problem is reported at once in one `config_invalid` error whose
 * `details.problems` lists them. The result is deep-frozen.
 */
export function loadConfig(env: Env, host: HostFacts = detectHost()): Config {
  const read = new EnvReader(env)
  const listenHost = read.string('BERTH_HOST', '127.0.0.1')
  const port = read.int('BERTH_PORT', 8080, 0, MAX_PORT)
  const dataDir = read.string('BERTH_DATA_DIR', './data')
  const publicUrl = readPublicUrl(read, listenHost, port)

  const config: Config = {
    http: {
      host: listenHost,
      port,
      publicUrl,
      bodyLimitBytes: read.int('BERTH_BODY_LIMIT_BYTES', 1024 * 1024, 1024, 1024 ** 3),
    },
    dataDir,
    metadata: readMetadata(read, dataDir),
    artifacts: readArtifacts(read, dataDir),
    scheduler: readScheduler(read, host),
    bootstrapApiKey: readBootstrapKey(read),
    uploadSigningKey: readSigningKey(read),
    limits: {
      maxArchiveBytes: read.int('BERTH_MAX_ARCHIVE_BYTES', TEN_GIB, 1, Number.MAX_SAFE_INTEGER),
      maxArchiveEntries: read.int('BERTH_MAX_ARCHIVE_ENTRIES', 10_000, 1, 10_000_000),
      maxUnpackedBytes: read.int(
        'BERTH_MAX_UNPACKED_BYTES',
        4 * TEN_GIB,
        1,
        Number.MAX_SAFE_INTEGER,
      ),
      maxCompressionRatio: read.int('BERTH_MAX_COMPRESSION_RATIO', 50, 1, 1_000_000),
      loadTimeoutMs: read.int('BERTH_LOAD_TIMEOUT_MS', 120_000, 100, 3_600_000),
    },
    deployments: {
      maxRestarts: read.int('BERTH_RUNNER_MAX_RESTARTS', 3, 0, 1000),
      restartBackoffMs: read.int('BERTH_RUNNER_RESTART_BACKOFF_MS', 500, 0, 600_000),
      waitTimeoutMs: read.int('BERTH_DEPLOY_WAIT_TIMEOUT_MS', 300_000, 0, 3_600_000),
      syncIntervalMs: read.int('BERTH_SYNC_INTERVAL_MS', 2000, 50, 3_600_000),
    },
    inference: {
      timeoutMs: read.int('BERTH_INFER_TIMEOUT_MS', 30_000, 1, 3_600_000),
      maxRequestBytes: read.int('BERTH_MAX_INFER_BYTES', 64 * 1024 ** 2, 1024, 2 ** 31 - 1),
    },
    logLevel: read.oneOf('BERTH_LOG_LEVEL', LOG_LEVELS, 'info'),
    shutdownTimeoutMs: read.int('BERTH_SHUTDOWN_TIMEOUT_MS', 10_000, 0, 3_600_000),
    client: {
      url: readClientUrl(read) ?? publicUrl,
      apiKey: read.raw('BERTH_API_KEY'),
    },
  }

  if (read.problems.length > 0) {
    throw new BerthError(
      'config_invalid',
      `invalid configuration:\n  ${read.problems.join('\n  ')}`,
      { details: { problems: read.problems } },
    )
  }
  return deepFreeze(config)
}

function readPublicUrl(read: EnvReader, host: string, port: number): string {
  const value = read.raw('BERTH_PUBLIC_URL')
  if (value === undefined) {
    const shownHost = host.includes(':') ? `[${host}]` : host
    return `http://${shownHost}:${port}`
  }
  let url: URL
  try {
    url = new URL(value)
  } catch {
    read.problems.push(`BERTH_PUBLIC_URL must be an absolute http(s) URL, got "${value}"`)
    return value
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    read.problems.push(`BERTH_PUBLIC_URL must be an absolute http(s) URL, got "${value}"`)
  }
  return value.replace(/\/+$/, '')
}

function readClientUrl(read: EnvReader): string | undefined {
  const value = read.raw('BERTH_URL')
  if (value === undefined) return undefined
  if (!/^https?:\/\/[^/]/.test(value)) {
    read.problems.push(`BERTH_URL must be an absolute http(s) URL, got "${value}"`)
  }
  return value.replace(/\/+$/, '')
}

/** A plain lower-case identifier: it is put in SQL unquoted by hand nowhere, but keep it simple. */
const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/

function readMetadata(read: EnvReader, dataDir: string): MetadataConfig {
  const value = read.raw('BERTH_DATABASE_URL')
  if (value === undefined) return { driver: 'sqlite', path: join(dataDir, 'berth.db') }
  if (value.startsWith('sqlite://')) {
    const path = value.slice('sqlite://'.length)
    if (path === '') read.problems.push('BERTH_DATABASE_URL sqlite:// needs a file path')
    return { driver: 'sqlite', path }
  }
  if (value.startsWith('postgres://') || value.startsWith('postgresql://')) {
    const schema = read.raw('BERTH_DATABASE_SCHEMA')
    if (schema !== undefined && !SCHEMA_PATTERN.test(schema)) {
      read.problems.push(`BERTH_DATABASE_SCHEMA must match ${SCHEMA_PATTERN.source}`)
    }
    return {
      driver: 'postgres',
      url: value,
      schema,
      poolSize: read.int('BERTH_DATABASE_POOL_SIZE', 10, 1, 1000),
    }
  }
  read.problems.push('BERTH_DATABASE_URL must start with sqlite:// or postgres://')
  return { driver: 'sqlite', path: join(dataDir, 'berth.db') }
}

/** S3's bucket naming rules, simplified: 3–63 lower-case letters, digits, dots and hyphens. */
const BUCKET_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

/**
 * `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (with `AWS_SESSION_TOKEN`) when both are set;
 * otherwise the AWS SDK's own chain (profiles, instance roles) finds them.
 */
function s3Credentials(read: EnvReader) {
  const accessKeyId = read.raw('AWS_ACCESS_KEY_ID')
  const secretAccessKey = read.raw('AWS_SECRET_ACCESS_KEY')
  if (accessKeyId === undefined || secretAccessKey === undefined) return {}
  const sessionToken = read.raw('AWS_SESSION_TOKEN')
  return {
    credentials: {
      accessKeyId,
      secretAccessKey,
      ...(sessionToken === undefined ? {} : { sessionToken }),
    },
  }
}

function readArtifacts(read: EnvReader, dataDir: string): ArtifactsConfig {
  const value = read.raw('BERTH_STORAGE_URL')
  if (value === undefined) return { driver: 'fs', root: join(dataDir, 'archives') }
  if (value.startsWith('file://')) {
    const root = value.slice('file://'.length)
    if (root === '') read.problems.push('BERTH_STORAGE_URL file:// needs a directory path')
    return { driver: 'fs', root }
  }
  if (value.startsWith('s3://')) {
    const [bucket = '', ...rest] = value.slice('s3://'.length).split('/')
    if (!BUCKET_PATTERN.test(bucket)) {
      read.problems.push('BERTH_STORAGE_URL s3://BUCKET/PREFIX needs a valid bucket name')
    }
    return {
      driver: 's3',
      bucket,
      prefix: rest.filter((segment) => segment !== '').join('/'),
      endpoint: read.raw('BERTH_S3_ENDPOINT'),
      region: read.raw('BERTH_S3_REGION') ?? 'us-east-1',
      forcePathStyle: read.bool('BERTH_S3_FORCE_PATH_STYLE', false),
      ...s3Credentials(read),
    }
  }
  read.problems.push('BERTH_STORAGE_URL must start with file:// or s3://')
  return { driver: 'fs', root: join(dataDir, 'archives') }
}

function readScheduler(read: EnvReader, host: HostFacts): SchedulerConfig {
  const value = read.oneOf('BERTH_SCHEDULER', ['local', 'kubernetes'], 'local')
  if (value === 'kubernetes') {
    read.problems.push('BERTH_SCHEDULER: kubernetes is not supported by this version of berth yet')
  }
  const memoryGb = read.number('BERTH_NODE_MEMORY_GB', host.memoryBytes / GIB, 0.01, 1_000_000)
  return {
    driver: 'local',
    node: {
      cpus: read.number('BERTH_NODE_CPUS', host.cpus, 0.1, 100_000),
      cpuOvercommit: read.number('BERTH_CPU_OVERCOMMIT', 4, 1, 1000),
      memoryBytes: Math.round(memoryGb * GIB),
      // The bundled ONNX Runtime is the CPU build: GPUs are offered only when configured.
      gpus: read.int('BERTH_NODE_GPUS', 0, 0, 64),
    },
    torchPython: read.raw('BERTH_TORCH_PYTHON'),
    spareRunners: read.int('BERTH_SPARE_RUNNERS', 1, 0, 16),
  }
}

// Keys are compared as opaque strings; the prefix keeps them recognisable to secret scanners.
const BOOTSTRAP_KEY_PATTERN = /^sk_[\x21-\x7e]{16,}$/

function readSigningKey(read: EnvReader): string | undefined {
  const value = read.raw('BERTH_UPLOAD_SIGNING_KEY')
  if (value !== undefined && value.length < 32) {
    read.problems.push('BERTH_UPLOAD_SIGNING_KEY needs at least 32 characters')
  }
  return value
}

function readBootstrapKey(read: EnvReader): string | undefined {
  const value = read.raw('BERTH_BOOTSTRAP_API_KEY')
  if (value !== undefined && !BOOTSTRAP_KEY_PATTERN.test(value)) {
    // Never echo the value: it is a secret.
    read.problems.push(
      'BERTH_BOOTSTRAP_API_KEY must be "sk_" followed by at least 16 printable characters',
    )
  }
  return value
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
