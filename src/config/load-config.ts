import { join } from 'node:path'
import { BerthError } from '../errors/berth-error.js'
import type {
  ArtifactsConfig,
  Config,
  MetadataConfig,
  MetricsConfig,
  SchedulerConfig,
} from './config.js'
import {
  type ChoiceVariable,
  CONFIG_VARIABLES,
  type DerivedDefault,
  type NumberVariable,
  type VariableName,
  type VariableOfKind,
  type VariableSpec,
} from './config-variables.js'
import { detectHost, type HostFacts } from './host-facts.js'

/** Environment variables, as the process received them. */
export type Env = Readonly<Record<string, string | undefined>>

/** The AWS SDK's own credential variables, read beside berth's for an S3 store. */
type AwsVariable = 'AWS_ACCESS_KEY_ID' | 'AWS_SECRET_ACCESS_KEY' | 'AWS_SESSION_TOKEN'

/** Variables of a kind whose default is a value, not derived from other variables or the host. */
type WithValueDefault<K extends VariableSpec['kind']> = {
  [N in VariableOfKind<K>]: (typeof CONFIG_VARIABLES)[N]['default'] extends
    | DerivedDefault
    | undefined
    ? never
    : N
}[VariableOfKind<K>]

/**
 * Reads one value at a time, as `CONFIG_VARIABLES` defines it (default, bounds), recording every
 * problem instead of stopping at the first, so a misconfigured start lists everything that is
 * wrong in one go.
 */
class EnvReader {
  readonly problems: string[] = []
  readonly #env: Env

  constructor(env: Env) {
    this.#env = env
  }

  raw(name: VariableName | AwsVariable): string | undefined {
    const value = this.#env[name]
    return value === undefined || value.trim() === '' ? undefined : value.trim()
  }

  string(name: WithValueDefault<'text'>): string {
    return this.raw(name) ?? CONFIG_VARIABLES[name].default
  }

  int(name: VariableOfKind<'int'>): number {
    const { default: fallback, min, max } = CONFIG_VARIABLES[name]
    const value = this.raw(name)
    if (value === undefined) return fallback
    const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max}, got "${value}"`)
      return fallback
    }
    return parsed
  }

  /** `derived` is the default of a variable whose default comes from the host. */
  number(name: VariableOfKind<'number'>, derived?: number): number {
    const spec: NumberVariable = CONFIG_VARIABLES[name]
    const fallback = typeof spec.default === 'number' ? spec.default : derived
    if (fallback === undefined) throw new Error(`${name} needs its derived default`)
    const value = this.raw(name)
    if (value === undefined) return fallback
    const parsed = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN
    if (!Number.isFinite(parsed) || parsed < spec.min || parsed > spec.max) {
      this.problems.push(`${name} must be a number from ${spec.min} to ${spec.max}, got "${value}"`)
      return fallback
    }
    return parsed
  }

  bool(name: VariableOfKind<'bool'>): boolean {
    const fallback = CONFIG_VARIABLES[name].default
    const value = this.raw(name)?.toLowerCase()
    if (value === undefined) return fallback
    if (['1', 'true', 'yes'].includes(value)) return true
    if (['0', 'false', 'no'].includes(value)) return false
    this.problems.push(`${name} must be true or false, got "${value}"`)
    return fallback
  }

  choice<N extends VariableOfKind<'choice'>>(
    name: N,
  ): (typeof CONFIG_VARIABLES)[N]['values'][number] {
    type Value = (typeof CONFIG_VARIABLES)[N]['values'][number]
    const spec: ChoiceVariable = CONFIG_VARIABLES[name]
    const value = this.raw(name)
    if (value === undefined) return spec.default as Value
    if (!spec.values.includes(value)) {
      this.problems.push(`${name} must be one of ${spec.values.join(', ')}, got "${value}"`)
      return spec.default as Value
    }
    return value as Value
  }
}

const MIB = 1024 ** 2
const GIB = 1024 ** 3

/**
 * Turns the environment into berth's configuration. Pure: `main.ts` passes the process environment,
 * tests pass a literal. Every problem is reported at once in one `config_invalid` error whose
 * `details.problems` lists them. The result is deep-frozen.
 */
export function loadConfig(env: Env, host: HostFacts = detectHost()): Config {
  const read = new EnvReader(env)
  const listenHost = read.string('BERTH_HOST')
  const port = read.int('BERTH_PORT')
  const dataDir = read.string('BERTH_DATA_DIR')
  const publicUrl = readPublicUrl(read, listenHost, port)

  const crashAt = read.choice('BERTH_TEST_CRASH_AT')
  const config: Config = {
    http: {
      host: listenHost,
      port,
      publicUrl,
      bodyLimitBytes: read.int('BERTH_BODY_LIMIT_BYTES'),
      timeouts: {
        headersMs: read.int('BERTH_HEADERS_TIMEOUT_MS'),
        keepAliveMs: read.int('BERTH_KEEP_ALIVE_TIMEOUT_MS'),
        bodyMs: read.int('BERTH_BODY_TIMEOUT_MS'),
        bodyIdleMs: read.int('BERTH_BODY_IDLE_TIMEOUT_MS'),
      },
    },
    metrics: readMetrics(read),
    dataDir,
    metadata: readMetadata(read, dataDir),
    artifacts: readArtifacts(read, dataDir),
    scheduler: readScheduler(read, host, env),
    bootstrapApiKey: readBootstrapKey(read),
    uploadSigningKey: readSigningKey(read),
    limits: {
      maxArchiveBytes: read.int('BERTH_MAX_ARCHIVE_BYTES'),
      maxArchiveEntries: read.int('BERTH_MAX_ARCHIVE_ENTRIES'),
      maxUnpackedBytes: read.int('BERTH_MAX_UNPACKED_BYTES'),
      maxCompressionRatio: read.int('BERTH_MAX_COMPRESSION_RATIO'),
      loadTimeoutMs: read.int('BERTH_LOAD_TIMEOUT_MS'),
      orphanGraceMs: read.int('BERTH_ORPHAN_GRACE_MS'),
    },
    deployments: {
      maxRestarts: read.int('BERTH_RUNNER_MAX_RESTARTS'),
      restartBackoffMs: read.int('BERTH_RUNNER_RESTART_BACKOFF_MS'),
      idleTimeoutMs: read.int('BERTH_IDLE_TIMEOUT_S') * 1000,
      waitTimeoutMs: read.int('BERTH_DEPLOY_WAIT_TIMEOUT_MS'),
      syncIntervalMs: read.int('BERTH_SYNC_INTERVAL_MS'),
    },
    inference: {
      timeoutMs: read.int('BERTH_INFER_TIMEOUT_MS'),
      maxRequestBytes: read.int('BERTH_MAX_INFER_BYTES'),
      maxJsonBytes: read.int('BERTH_MAX_INFER_JSON_BYTES'),
      memoryBudgetBytes: read.int('BERTH_INFER_MEMORY_BUDGET_BYTES'),
      maxQueueSize: read.int('BERTH_MAX_QUEUE_SIZE'),
      maxTensorBytes: read.int('BERTH_MAX_INFER_TENSOR_BYTES'),
    },
    logLevel: read.choice('BERTH_LOG_LEVEL'),
    logFormat: read.choice('BERTH_LOG_FORMAT') as Config['logFormat'],
    shutdownTimeoutMs: read.int('BERTH_SHUTDOWN_TIMEOUT_MS'),
    crashAt: crashAt === 'off' ? undefined : crashAt,
    client: {
      url: readClientUrl(read) ?? publicUrl,
      apiKey: read.raw('BERTH_API_KEY'),
    },
    tracing: readTracing(env, read.problems),
  }

  checkRunnerFiles(read, config)
  if (read.problems.length > 0) {
    throw new BerthError(
      'config_invalid',
      `invalid configuration:\n  ${read.problems.join('\n  ')}`,
      { details: { problems: read.problems } },
    )
  }
  return deepFreeze(config)
}

/**
 * OpenTelemetry's standard variables (not berth's own): traces go where
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` says, or `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`.
 */
function readTracing(env: Env, problems: string[]): Config['tracing'] {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT
  const url = traces || (base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined)
  if (url === undefined) return undefined
  if (!/^https?:\/\/[^\s]+$/.test(url)) {
    problems.push(`OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL, got "${url}"`)
    return undefined
  }
  return { url, serviceName: env.OTEL_SERVICE_NAME || 'berth' }
}

/** `{ [key]: value }`, or nothing when `value` is unset. */
function optional<K extends string>(key: K, value: string | undefined): { [k in K]?: string } {
  return value === undefined ? {} : ({ [key]: value } as { [k in K]: string })
}

/** `BERTH_RUNNER_FILES=fetch` is for runner containers, from an S3 artifact store. */
function checkRunnerFiles(read: EnvReader, config: Config): void {
  if (config.scheduler.runnerFiles !== 'fetch') return
  if (config.scheduler.driver === 'local') {
    read.problems.push(
      'BERTH_RUNNER_FILES=fetch is for runner containers: BERTH_SCHEDULER must be docker or swarm',
    )
  }
  if (config.artifacts.driver !== 's3') {
    read.problems.push(
      'BERTH_RUNNER_FILES=fetch has runners download archives from S3: BERTH_STORAGE_URL must be s3://…',
    )
  }
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

/** A header-safe token: printable ASCII without blanks, long enough not to be guessed. */
const METRICS_TOKEN_PATTERN = /^[\x21-\x7e]{16,}$/

function readMetrics(read: EnvReader): MetricsConfig {
  const token = read.raw('BERTH_METRICS_TOKEN')
  if (token !== undefined && !METRICS_TOKEN_PATTERN.test(token)) {
    // Never echo the value: it is a secret.
    read.problems.push(
      'BERTH_METRICS_TOKEN must be 16 or more printable characters, without spaces',
    )
  }
  const host = read.string('BERTH_METRICS_HOST')
  const port = read.raw('BERTH_METRICS_PORT')
  if (port === undefined) {
    if (read.raw('BERTH_METRICS_HOST') !== undefined) {
      read.problems.push(
        'BERTH_METRICS_HOST needs BERTH_METRICS_PORT: it is the address of that listener',
      )
    }
    return { token, listen: undefined }
  }
  const parsed = /^\d+$/.test(port) ? Number(port) : Number.NaN
  if (!Number.isSafeInteger(parsed) || parsed > 65_535) {
    read.problems.push(`BERTH_METRICS_PORT must be an integer from 0 to 65535, got "${port}"`)
  }
  return { token, listen: { host, port: parsed } }
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
      poolSize: read.int('BERTH_DATABASE_POOL_SIZE'),
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
      ...optional('downloadEndpoint', read.raw('BERTH_S3_RUNNER_ENDPOINT')),
      region: read.string('BERTH_S3_REGION'),
      forcePathStyle: read.bool('BERTH_S3_FORCE_PATH_STYLE'),
      ...s3Credentials(read),
    }
  }
  read.problems.push('BERTH_STORAGE_URL must start with file:// or s3://')
  return { driver: 'fs', root: join(dataDir, 'archives') }
}

function readScheduler(read: EnvReader, host: HostFacts, env: Env): SchedulerConfig {
  // Named in the docs as planned, so it gets its own answer rather than "must be one of".
  let driver: SchedulerConfig['driver'] = 'local'
  if (read.raw('BERTH_SCHEDULER') === 'kubernetes') {
    read.problems.push('BERTH_SCHEDULER: kubernetes is not supported by this version of berth yet')
  } else {
    driver = read.choice('BERTH_SCHEDULER') as SchedulerConfig['driver']
  }
  const dockerHost = read.string('BERTH_DOCKER_HOST')
  if (!dockerHost.startsWith('unix://') || dockerHost.length <= 'unix://'.length) {
    read.problems.push('BERTH_DOCKER_HOST must be unix:// and the path of the engine socket')
  }
  const memoryGb = read.number('BERTH_NODE_MEMORY_GB', host.memoryBytes / GIB)
  return {
    driver,
    docker: {
      host: dockerHost,
      images: {
        onnx: read.string('BERTH_RUNTIME_IMAGE_ONNX'),
        torch: read.string('BERTH_RUNTIME_IMAGE_TORCH'),
      },
    },
    node: {
      cpus: read.number('BERTH_NODE_CPUS', host.cpus),
      cpuOvercommit: read.number('BERTH_CPU_OVERCOMMIT'),
      memoryBytes: Math.round(memoryGb * GIB),
      // The bundled ONNX Runtime is the CPU build: GPUs are offered only when configured.
      gpus: read.int('BERTH_NODE_GPUS'),
    },
    runnerFiles: read.choice('BERTH_RUNNER_FILES') as SchedulerConfig['runnerFiles'],
    nodeGiven: {
      cpus: read.raw('BERTH_NODE_CPUS') !== undefined,
      memory: read.raw('BERTH_NODE_MEMORY_GB') !== undefined,
    },
    torchPython: read.raw('BERTH_TORCH_PYTHON'),
    spareRunners: read.int('BERTH_SPARE_RUNNERS'),
    sharedRunners: {
      maxModels: read.int('BERTH_SHARED_RUNNER_MAX_MODELS'),
      maxModelBytes: read.int('BERTH_SHARED_RUNNER_MAX_MODEL_MB') * MIB,
    },
    runnerPing: readRunnerPing(read),
    runnerEnv: runnerEnvironment(env),
  }
}

/**
 * What runners inherit of the server's environment: where programs and libraries are, the
 * locale, time zone and temp dir, and the math libraries' settings (OpenBLAS, OpenMP, MKL: their
 * kernels and threads decide the very bits a model computes). Nothing else: a runner loads
 * untrusted models, and the server's environment holds its database URL, keys and `AWS_*`
 * credentials.
 */
export const RUNNER_ENV_NAMES = [
  'PATH',
  'HOME',
  'LANG',
  'LC_ALL',
  'TZ',
  'TMPDIR',
  'LD_LIBRARY_PATH',
]
const RUNNER_ENV_PREFIXES = ['OPENBLAS_', 'OMP_', 'MKL_', 'KMP_', 'GOTO_']

/** The part of `env` runners get: see `RUNNER_ENV_NAMES`. */
function runnerEnvironment(env: Env): Record<string, string> {
  const passes = (name: string) =>
    RUNNER_ENV_NAMES.includes(name) || RUNNER_ENV_PREFIXES.some((p) => name.startsWith(p))
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => passes(entry[0]) && entry[1] !== undefined,
    ),
  )
}

function readRunnerPing(read: EnvReader): SchedulerConfig['runnerPing'] {
  const intervalMs = read.int('BERTH_RUNNER_PING_INTERVAL_MS')
  const timeoutMs = read.int('BERTH_RUNNER_PING_TIMEOUT_MS')
  return intervalMs === 0 ? undefined : { intervalMs, timeoutMs }
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
