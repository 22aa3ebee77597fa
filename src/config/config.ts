import type { CrashPoint } from '../domain/crash-points.js'

/** Levels accepted by `BERTH_LOG_LEVEL` (pino's, plus `silent`). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export interface HttpConfig {
  readonly host: string
  readonly port: number
  /** Base of the URLs handed to clients, without a trailing slash. */
  readonly publicUrl: string
  /** Largest JSON request body accepted (uploads stream and have their own limit). */
  readonly bodyLimitBytes: number
  readonly timeouts: HttpTimeouts
}

/** How long the server waits on a client before it closes the connection. */
export interface HttpTimeouts {
  /** From the start of a request to the end of its head (request line and headers). */
  readonly headersMs: number
  /** An idle kept-alive connection is closed after this long. */
  readonly keepAliveMs: number
  /** From the end of the head to the end of the body, uploads excepted. */
  readonly bodyMs: number
  /** Longest wait for the next byte of a body, uploads included. */
  readonly bodyIdleMs: number
}

/**
 * How `/metrics` is served. Its series name every organization's namespaces, models and states, so
 * it is open only on a loopback API address; otherwise it needs the token or a listener of its own.
 */
export interface MetricsConfig {
  /** The bearer token `/metrics` requires wherever it is served; unset: none. A secret. */
  readonly token: string | undefined
  /** A listener serving only `/metrics`; unset: `/metrics` is on the API port. */
  readonly listen: { readonly host: string; readonly port: number } | undefined
}

/** Where organizations, keys, namespaces and models are recorded. */
export type MetadataConfig =
  | { readonly driver: 'sqlite'; readonly path: string }
  | {
      readonly driver: 'postgres'
      /** `postgres://user:password@host:port/database`: a secret, never logged. */
      readonly url: string
      /** Tables live in this schema (created if missing); the connection's default otherwise. */
      readonly schema?: string | undefined
      readonly poolSize?: number | undefined
    }

/** Where uploaded archives are kept. */
export type ArtifactsConfig =
  | { readonly driver: 'fs'; readonly root: string }
  | {
      readonly driver: 's3'
      readonly bucket: string
      /** Key prefix inside the bucket, without leading or trailing `/` ('' for none). */
      readonly prefix: string
      /** An S3-compatible server's URL (radosgw, MinIO); AWS when unset. */
      readonly endpoint: string | undefined
      /**
       * The server as runners reach it, where that differs from `endpoint`: presigned downloads
       * are signed for it (the host is part of the signature). Unset: `endpoint`.
       */
      readonly downloadEndpoint?: string | undefined
      readonly region: string
      /** `http://host/bucket/key` instead of `http://bucket.host/key` (most non-AWS servers). */
      readonly forcePathStyle: boolean
      /** Explicit credentials (tests); unset: the AWS default chain (`AWS_ACCESS_KEY_ID`, …). */
      readonly credentials?: {
        readonly accessKeyId: string
        readonly secretAccessKey: string
        readonly sessionToken?: string
      }
    }

/** What the local node offers to deployments: admission reserves against it. */
export interface NodeCapacity {
  /** CPUs deployments may reserve before overcommit. */
  readonly cpus: number
  /** Factor by which reserved `num_cpus` may exceed `cpus` (CPU time is shared, not lost). */
  readonly cpuOvercommit: number
  readonly memoryBytes: number
  readonly gpus: number
}

/** Who places runner processes. */
export type SchedulerConfig = {
  /**
   * `local`: runner child processes; `docker`: a container each, on this node's engine; `swarm`:
   * a Swarm service each, placed by the engine on the swarm's nodes.
   */
  readonly driver: 'local' | 'docker' | 'swarm'
  /** The engine (a Swarm manager's, for `swarm`) and runtime images of the container drivers. */
  readonly docker: {
    readonly host: string
    readonly images: { readonly onnx: string; readonly torch: string }
  }
  readonly node: NodeCapacity
  /**
   * Whether `BERTH_NODE_CPUS` and `BERTH_NODE_MEMORY_GB` were set; the `swarm` driver offers the
   * swarm's schedulable nodes' totals for those that were not.
   */
  readonly nodeGiven: { readonly cpus: boolean; readonly memory: boolean }
  /**
   * How a runner container gets its model's files: `mount`, the data dir's model folders
   * mounted read-only (one host, or a filesystem every node shares); `fetch`, the runner
   * downloads the model's archive from the S3 artifact store with a presigned URL and unpacks it
   * in a scratch volume of its own (any node). Only the container drivers; `fetch` needs S3.
   */
  readonly runnerFiles: 'mount' | 'fetch'
  /** A python3 that can `import torch`, for TorchScript; unset: Debian's `/usr/bin/python3` if it can. */
  readonly torchPython: string | undefined
  /** ONNX runner processes kept started ahead of need, so a deploy or upload check skips the start. */
  readonly spareRunners: number
  /**
   * Small models of one organization share runner processes: at most `maxModels` in one (under
   * 2: none share), each with files of at most `maxModelBytes`.
   */
  readonly sharedRunners: { readonly maxModels: number; readonly maxModelBytes: number }
  /**
   * The environment runners get: only the `RUNNER_ENV_NAMES` the server was given. Runners load
   * untrusted models, so never the database URL, keys or cloud credentials.
   */
  readonly runnerEnv: Readonly<Record<string, string>>
  /**
   * Liveness pings of idle runners: how often, and how long one has to answer before it is
   * killed and restarted (`runner_unresponsive`); `undefined` turns them off.
   */
  readonly runnerPing: { readonly intervalMs: number; readonly timeoutMs: number } | undefined
}

/** How deployments are kept alive. */
export interface DeploymentsConfig {
  /** Restarts of a crashed runner before the deployment is `failed`. */
  readonly maxRestarts: number
  /** First restart delay; doubles with each consecutive crash. */
  readonly restartBackoffMs: number
  /** How long an on-demand model may go without a request before it is unloaded; 0: never. */
  readonly idleTimeoutMs: number
  /** Bound on `?wait=true` for upload and deploy; past it the answer shows the state so far. */
  readonly waitTimeoutMs: number
  /** How often this instance follows the desired states in the shared database. */
  readonly syncIntervalMs: number
}

export interface InferenceConfig {
  /** Bound on one inference request, queueing included; past it: 504. */
  readonly timeoutMs: number
  /** Largest inference request body (JSON or binary tensors). */
  readonly maxRequestBytes: number
  /** Largest JSON part of one (the whole body, or a binary request's JSON header). */
  readonly maxJsonBytes: number
  /**
   * Memory that inference request bodies being read, decoded and answered may take at once,
   * counted from their lengths (JSON several times over); past it: 429 `decode_budget_full`.
   */
  readonly memoryBudgetBytes: number
  /** Requests waiting per deployment (running ones not counted); past it: 429 `queue_full`. */
  readonly maxQueueSize: number
  /**
   * Most bytes of tensors one request brings into a runner: its decoded inputs and its
   * outputs where the signature tells their size. A deployment's bound is the lower of this and
   * its `memory_gb` (outputs counted twice there: a runner holds each twice while sending it);
   * past it: 413 before the request runs.
   */
  readonly maxTensorBytes: number
}

export interface LimitsConfig {
  readonly maxArchiveBytes: number
  readonly maxArchiveEntries: number
  readonly maxUnpackedBytes: number
  readonly maxCompressionRatio: number
  /** Bound on starting a runner and loading a model in it. */
  readonly loadTimeoutMs: number
  /**
   * Age past which a stored archive that no record holds is removed as a crash's leftover
   * (another instance's upload stores its archive a moment before recording it).
   */
  readonly orphanGraceMs: number
}

/** How the `berth upload` client reaches a server. */
export interface ClientConfig {
  /** Base URL of the server, without a trailing slash. */
  readonly url: string
  /** Bearer key; when unset the CLI falls back to the bootstrap key file under the data dir. */
  readonly apiKey: string | undefined
}

/** The whole configuration of a berth process; built only by `loadConfig`, deep-frozen. */
export interface Config {
  readonly http: HttpConfig
  readonly metrics: MetricsConfig
  readonly dataDir: string
  readonly metadata: MetadataConfig
  readonly artifacts: ArtifactsConfig
  readonly scheduler: SchedulerConfig
  /** Key given to the `default` organization when the store starts empty; generated when unset. */
  readonly bootstrapApiKey: string | undefined
  /** Signs berth's own upload URLs (org registry on the file store); generated when unset. */
  readonly uploadSigningKey: string | undefined
  readonly limits: LimitsConfig
  readonly deployments: DeploymentsConfig
  readonly inference: InferenceConfig
  readonly logLevel: LogLevel
  /** JSON lines, or pretty ones for people; `auto`: pretty when stdout is a terminal. */
  readonly logFormat: 'auto' | 'json' | 'pretty'
  /** Bound on draining in-flight requests at shutdown before connections are cut. */
  readonly shutdownTimeoutMs: number
  /**
   * Crash-consistency tests only: the server kills itself (SIGKILL) on reaching this point of
   * the upload, deploy or delete path. `undefined` in any real use.
   */
  readonly crashAt: CrashPoint | undefined
  readonly client: ClientConfig
  /**
   * OpenTelemetry traces, sent as OTLP/HTTP to `url` (the standard
   * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`);
   * `undefined`: none are made.
   */
  readonly tracing: { readonly url: string; readonly serviceName: string } | undefined
}
