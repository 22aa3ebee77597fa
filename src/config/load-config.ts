import { join } from 'node:path'
import { BerthError } from '../errors/berth-error.js'
import type { ArtifactsConfig, Config, MetadataConfig, MetricsConfig } from './config.js'
import { type Env, EnvReader } from './env-reader.js'
import { detectHost, type HostFacts } from './host-facts.js'
import { checkRunnerFiles, readScheduler } from './scheduler-config.js'

export type { Env }

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
    // The variable the URL came from, so the message names what to fix.
    const name = traces ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT'
    problems.push(`${name} must be an http(s) URL, got "${url}"`)
    return undefined
  }
  return { url, serviceName: env.OTEL_SERVICE_NAME || 'berth' }
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
    const downloadEndpoint = read.raw('BERTH_S3_RUNNER_ENDPOINT')
    const [bucket = '', ...rest] = value.slice('s3://'.length).split('/')
    if (!BUCKET_PATTERN.test(bucket)) {
      read.problems.push('BERTH_STORAGE_URL s3://BUCKET/PREFIX needs a valid bucket name')
    }
    return {
      driver: 's3',
      bucket,
      prefix: rest.filter((segment) => segment !== '').join('/'),
      endpoint: read.raw('BERTH_S3_ENDPOINT'),
      ...(downloadEndpoint === undefined ? {} : { downloadEndpoint }),
      region: read.string('BERTH_S3_REGION'),
      forcePathStyle: read.bool('BERTH_S3_FORCE_PATH_STYLE'),
      ...s3Credentials(read),
    }
  }
  read.problems.push('BERTH_STORAGE_URL must start with file:// or s3://')
  return { driver: 'fs', root: join(dataDir, 'archives') }
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
