import { CRASH_POINTS } from '../domain/crash-points.js'
import { LOG_LEVELS } from './config.js'

import type { VariableSpec } from './variable-kinds.js'

export type {
  ChoiceVariable,
  DerivedDefault,
  NumberVariable,
  VariableSpec,
} from './variable-kinds.js'

const GIB = 1024 ** 3
const HOUR_MS = 3_600_000

/**
 * Every `BERTH_` variable berth reads: its default, its bounds and what it means, defined once.
 * `loadConfig` reads through this table, and a conventions test checks docs/configuration.md
 * against it (names, defaults, bounds). A new variable is one entry here and one row there.
 */
export const CONFIG_VARIABLES = {
  BERTH_HOST: {
    kind: 'text',
    default: '127.0.0.1',
    accepts: 'host name or IP address',
    meaning: 'address to listen on',
  },
  BERTH_PORT: { kind: 'int', default: 8080, min: 0, max: 65_535, meaning: 'port to listen on' },
  BERTH_METRICS_TOKEN: {
    kind: 'text',
    default: undefined,
    accepts: '16 or more printable characters, no spaces',
    meaning: '`/metrics` requires `Authorization: Bearer` this token',
  },
  BERTH_METRICS_PORT: {
    kind: 'text',
    default: { shown: 'unset (the API port)' },
    accepts: '`0`–`65535`',
    meaning: 'port of a listener of its own for `/metrics`',
  },
  BERTH_METRICS_HOST: {
    kind: 'text',
    default: '127.0.0.1',
    accepts: 'host name or IP address',
    meaning: 'address of the `/metrics` listener',
  },
  BERTH_PUBLIC_URL: {
    kind: 'text',
    default: { shown: '`http://HOST:PORT`' },
    accepts: '`http(s)://` URL',
    meaning: 'base of the endpoint URLs handed to clients',
  },
  BERTH_DATA_DIR: {
    kind: 'text',
    default: './data',
    accepts: 'directory',
    meaning: 'embedded SQLite file, local archives, unpacked models, generated keys',
  },
  BERTH_DATABASE_URL: {
    kind: 'text',
    default: { shown: '`sqlite://$BERTH_DATA_DIR/berth.db`' },
    accepts: '`sqlite://…`, `postgres://…`',
    meaning: 'the metadata store',
  },
  BERTH_DATABASE_SCHEMA: {
    kind: 'text',
    default: undefined,
    accepts: 'lower-case SQL identifier',
    meaning: "PostgreSQL schema of berth's tables",
  },
  BERTH_DATABASE_POOL_SIZE: {
    kind: 'int',
    default: 10,
    min: 1,
    max: 1000,
    meaning: 'PostgreSQL connections per instance',
  },
  BERTH_STORAGE_URL: {
    kind: 'text',
    default: { shown: '`file://$BERTH_DATA_DIR/archives`' },
    accepts: '`file://…`, `s3://…`',
    meaning: 'the artifact store for uploaded archives',
  },
  BERTH_S3_ENDPOINT: {
    kind: 'text',
    default: { shown: 'unset (AWS)' },
    accepts: 'URL',
    meaning: 'an S3-compatible server',
  },
  BERTH_S3_RUNNER_ENDPOINT: {
    kind: 'text',
    default: { shown: '`BERTH_S3_ENDPOINT`' },
    accepts: 'URL',
    meaning:
      'the S3 server as runner containers reach it: where `BERTH_RUNNER_FILES=fetch` signs its URLs',
  },
  BERTH_S3_REGION: {
    kind: 'text',
    default: 'us-east-1',
    accepts: 'region name',
    meaning: 'the region signed into S3 requests',
  },
  BERTH_S3_FORCE_PATH_STYLE: {
    kind: 'bool',
    default: false,
    meaning: 'path-style S3 addressing',
  },
  BERTH_SCHEDULER: {
    kind: 'choice',
    values: ['local', 'docker', 'swarm'],
    default: 'local',
    meaning: 'where runners are placed',
  },
  BERTH_DOCKER_HOST: {
    kind: 'text',
    default: 'unix:///var/run/docker.sock',
    accepts: '`unix://` and the engine socket path',
    meaning: "the Docker engine of the `docker` scheduler (a Swarm manager's for `swarm`)",
  },
  BERTH_RUNNER_FILES: {
    kind: 'choice',
    values: ['mount', 'fetch'],
    default: 'mount',
    meaning:
      'how runner containers get model files: mounted read-only from the data dir, or fetched from the S3 artifact store with a short-lived URL (`docker` and `swarm` schedulers)',
  },
  BERTH_RUNTIME_IMAGE_ONNX: {
    kind: 'text',
    default: 'berth-runtime-onnx',
    accepts: 'an image in the engine',
    meaning:
      'the runner image of ONNX, weights and encoder models (`docker` and `swarm` schedulers)',
  },
  BERTH_RUNTIME_IMAGE_TORCH: {
    kind: 'text',
    default: 'berth-runtime-torch',
    accepts: 'an image in the engine',
    meaning: 'the runner image of TorchScript models (`docker` and `swarm` schedulers)',
  },
  BERTH_BOOTSTRAP_API_KEY: {
    kind: 'text',
    default: undefined,
    accepts: '`sk_` + 16 or more printable characters',
    meaning: 'key of the `default` organization created on first start',
  },
  BERTH_UPLOAD_SIGNING_KEY: {
    kind: 'text',
    default: { shown: 'generated' },
    accepts: '32 or more characters',
    meaning: "signs berth's own presigned upload URLs",
  },
  BERTH_MAX_ARCHIVE_BYTES: {
    kind: 'int',
    default: 10 * GIB,
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
    unit: 'bytes',
    meaning: 'largest model archive accepted',
  },
  BERTH_MAX_ARCHIVE_ENTRIES: {
    kind: 'int',
    default: 10_000,
    min: 1,
    max: 10_000_000,
    meaning: 'most entries an archive may hold',
  },
  BERTH_MAX_UNPACKED_BYTES: {
    kind: 'int',
    default: 40 * GIB,
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
    unit: 'bytes',
    meaning: 'most bytes an archive may unpack to',
  },
  BERTH_MAX_COMPRESSION_RATIO: {
    kind: 'int',
    default: 50,
    min: 1,
    max: 1_000_000,
    meaning: 'expansion past which an archive is a decompression bomb',
  },
  BERTH_LOAD_TIMEOUT_MS: {
    kind: 'int',
    default: 120_000,
    min: 100,
    max: HOUR_MS,
    meaning: 'bound on starting a runner and loading a model in it',
  },
  BERTH_NODE_CPUS: {
    kind: 'number',
    default: { shown: "the machine's CPU count, or its control group's CPU quota if less" },
    min: 0.1,
    max: 100_000,
    meaning: 'CPUs this node offers to deployments',
  },
  BERTH_CPU_OVERCOMMIT: {
    kind: 'number',
    default: 4,
    min: 1,
    max: 1000,
    meaning: 'how many times the node CPUs one deployment may ask for (num_cpus × replicas)',
  },
  BERTH_NODE_MEMORY_GB: {
    kind: 'number',
    default: { shown: "the machine's memory, or its control group's memory limit if less" },
    min: 0.01,
    max: 1_000_000,
    meaning: 'memory (GiB) this node offers to deployments',
  },
  BERTH_NODE_GPUS: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 64,
    meaning: 'GPUs this node offers to deployments',
  },
  BERTH_RUNNER_MAX_RESTARTS: {
    kind: 'int',
    default: 3,
    min: 0,
    max: 1000,
    meaning: 'restarts of a crashing runner before the deployment fails',
  },
  BERTH_RUNNER_RESTART_BACKOFF_MS: {
    kind: 'int',
    default: 500,
    min: 0,
    max: 600_000,
    meaning: 'first restart delay, doubled per consecutive crash',
  },
  BERTH_IDLE_TIMEOUT_S: {
    kind: 'int',
    default: 600,
    min: 0,
    max: 604_800,
    meaning:
      'seconds an on-demand model may go without a request before it is unloaded, unless it sets its own idle_timeout_s; 0: never',
  },
  BERTH_DEPLOY_WAIT_TIMEOUT_MS: {
    kind: 'int',
    default: 300_000,
    min: 0,
    max: HOUR_MS,
    meaning: 'bound on `?wait=true`',
  },
  BERTH_SYNC_INTERVAL_MS: {
    kind: 'int',
    default: 2000,
    min: 50,
    max: HOUR_MS,
    meaning: 'how often an instance follows the desired states in the database',
  },
  BERTH_INFER_TIMEOUT_MS: {
    kind: 'int',
    default: 30_000,
    min: 1,
    max: HOUR_MS,
    meaning: 'bound on one inference request, queueing included',
  },
  BERTH_MAX_INFER_BYTES: {
    kind: 'int',
    default: 64 * 1024 ** 2,
    min: 1024,
    max: 2 ** 31 - 1,
    unit: 'bytes',
    meaning: 'largest inference request body',
  },
  BERTH_MAX_INFER_JSON_BYTES: {
    kind: 'int',
    default: 16 * 1024 ** 2,
    min: 1024,
    max: 2 ** 31 - 1,
    unit: 'bytes',
    meaning: 'largest JSON part of an inference request',
  },
  BERTH_INFER_MEMORY_BUDGET_BYTES: {
    kind: 'int',
    default: GIB,
    min: 1024 ** 2,
    max: Number.MAX_SAFE_INTEGER,
    unit: 'bytes',
    meaning: 'server memory inference request bodies may take at once',
  },
  BERTH_MAX_INFER_TENSOR_BYTES: {
    kind: 'int',
    default: GIB,
    min: 1024,
    max: GIB,
    unit: 'bytes',
    meaning: 'most bytes of tensors one inference request brings into a runner',
  },
  BERTH_MAX_QUEUE_SIZE: {
    kind: 'int',
    default: 1024,
    min: 1,
    max: 1_000_000,
    meaning: 'most inference requests waiting per deployment',
  },
  BERTH_SPARE_RUNNERS: {
    kind: 'int',
    default: 1,
    min: 0,
    max: 16,
    meaning: 'ONNX runner processes kept started ahead of need',
  },
  BERTH_SHARED_RUNNER_MAX_MODELS: {
    kind: 'int',
    default: 32,
    min: 0,
    max: 1024,
    meaning: 'most models of one organization one runner process holds (0 or 1: no sharing)',
  },
  BERTH_SHARED_RUNNER_MAX_MODEL_MB: {
    kind: 'int',
    default: 64,
    min: 0,
    max: 65_536,
    meaning: 'largest model files (MiB) that share a runner process with other models',
  },
  BERTH_RUNNER_PING_INTERVAL_MS: {
    kind: 'int',
    default: 5000,
    min: 0,
    max: HOUR_MS,
    meaning: 'how often an idle runner is pinged (0: never)',
  },
  BERTH_RUNNER_PING_TIMEOUT_MS: {
    kind: 'int',
    default: 5000,
    min: 10,
    max: HOUR_MS,
    meaning: 'how long a pinged runner has to answer before it is restarted',
  },
  BERTH_TORCH_PYTHON: {
    kind: 'text',
    default: { shown: 'unset (auto-detect)' },
    accepts: 'path of a python3',
    meaning: 'a python3 that can `import torch`, for TorchScript',
  },
  BERTH_BODY_LIMIT_BYTES: {
    kind: 'int',
    default: 1024 ** 2,
    min: 1024,
    max: GIB,
    unit: 'bytes',
    meaning: 'largest JSON request body',
  },
  BERTH_HEADERS_TIMEOUT_MS: {
    kind: 'int',
    default: 30_000,
    min: 100,
    max: HOUR_MS,
    meaning: "bound on receiving a request's head",
  },
  BERTH_KEEP_ALIVE_TIMEOUT_MS: {
    kind: 'int',
    default: 72_000,
    min: 100,
    max: HOUR_MS,
    meaning: 'how long an idle kept-alive connection stays open',
  },
  BERTH_BODY_TIMEOUT_MS: {
    kind: 'int',
    default: 60_000,
    min: 100,
    max: HOUR_MS,
    meaning: 'bound on receiving a request body, uploads excepted',
  },
  BERTH_BODY_IDLE_TIMEOUT_MS: {
    kind: 'int',
    default: 30_000,
    min: 100,
    max: HOUR_MS,
    meaning: 'longest wait for the next byte of a request body, uploads included',
  },
  BERTH_LOG_LEVEL: {
    kind: 'choice',
    values: LOG_LEVELS,
    default: 'info',
    meaning: 'least severe level logged',
  },
  BERTH_LOG_FORMAT: {
    kind: 'choice',
    values: ['auto', 'json', 'pretty'],
    default: 'auto',
    meaning: 'log lines as JSON, or pretty for people; `auto`: pretty when stdout is a terminal',
  },
  BERTH_SHUTDOWN_TIMEOUT_MS: {
    kind: 'int',
    default: 10_000,
    min: 0,
    max: HOUR_MS,
    meaning: 'how long in-flight requests may finish at shutdown or undeploy',
  },
  BERTH_ORPHAN_GRACE_MS: {
    kind: 'int',
    default: HOUR_MS,
    min: 0,
    max: 7 * 24 * HOUR_MS,
    meaning: 'age past which a stored archive no record holds is removed',
  },
  BERTH_TEST_CRASH_AT: {
    kind: 'choice',
    values: ['off', ...CRASH_POINTS],
    default: 'off',
    meaning: 'crash tests only: the point at which the server kills itself',
  },
  BERTH_URL: {
    kind: 'text',
    default: { shown: '`$BERTH_PUBLIC_URL`' },
    accepts: '`http(s)://` URL',
    meaning: 'the server the client commands talk to',
    client: true,
  },
  BERTH_API_KEY: {
    kind: 'text',
    default: {
      shown: 'the key in `$BERTH_DATA_DIR/bootstrap-api-key`, if that file exists',
    },
    accepts: 'API key',
    meaning: 'the key the client commands send',
    client: true,
  },
} as const satisfies Readonly<Record<`BERTH_${string}`, VariableSpec>>

export type VariableName = keyof typeof CONFIG_VARIABLES

/** The names of the variables of one kind, so a reader can only read a variable as its kind. */
export type VariableOfKind<K extends VariableSpec['kind']> = {
  [N in VariableName]: (typeof CONFIG_VARIABLES)[N]['kind'] extends K ? N : never
}[VariableName]
