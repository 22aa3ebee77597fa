import type { Deployment } from './deployment-state.js'
import type { LoadPolicy } from './load-policy.js'
import type { Manifest } from './manifest.js'
import type { ModelFormat } from './model-format.js'

/** Mixpeek's model name rule. */
export const MODEL_NAME_PATTERN = /^[a-zA-Z][a-zA-Z0-9_-]{2,63}$/
/** `MAJOR.MINOR.PATCH`, no leading zeros. */
export const MODEL_VERSION_PATTERN = /^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$/

/**
 * Mixpeek's rule: `{name}_{version with "." replaced by "_"}`, e.g. `my-embedding-model_1_0_0`.
 * A version always has three parts, so the id maps back to exactly one (name, version).
 */
export function modelIdOf(name: string, version: string): string {
  return `${name}_${version.replaceAll('.', '_')}`
}

/** A model, by where it lives: its namespace and its `model_id`. */
export interface ModelRef {
  readonly namespaceId: string
  readonly modelId: string
}

/** The model's key in maps of this server's deployments: `namespaceId/modelId`. */
export function modelKey(model: ModelRef): string {
  return `${model.namespaceId}/${model.modelId}`
}

/** The key of a model's unpacked files (`namespaceId/uploadId`), as the local cache lists them. */
export function installKey(model: { readonly namespaceId: string; readonly uploadId: string }) {
  return `${model.namespaceId}/${model.uploadId}`
}

/** CPUs, GPUs and memory a deployment of the model needs. */
export interface ResourceRequirements {
  readonly numCpus: number
  readonly numGpus: number
  readonly memoryBytes: number
}

/**
 * What a model may ask for, wherever its requirements are given (upload, org model, enable).
 * Memory starts at 0.25 GiB: a runner process with ONNX Runtime loaded holds about 0.1 GiB before
 * any model, and its resident memory is held to `memory_gb`, so less would be admitted, deployed
 * and killed at once (`memory_limit_exceeded`).
 */
export const RESOURCE_BOUNDS = {
  minCpus: 0.1,
  maxCpus: 64,
  maxGpus: 8,
  minMemoryGb: 0.25,
  maxMemoryGb: 4096,
} as const

const GIB = 1024 ** 3

/** `RESOURCE_BOUNDS`' memory in bytes, as the organization registry's requests give it. */
export const MEMORY_BYTES_BOUNDS = {
  min: RESOURCE_BOUNDS.minMemoryGb * GIB,
  max: RESOURCE_BOUNDS.maxMemoryGb * GIB,
} as const

/** How a deployment serves requests (dynamic batching, as Triton configures it). */
export interface ServingSettings {
  /** Most rows run together; `null`: automatic (32 with a dynamic first dimension, else 1). */
  readonly maxBatchSize: number | null
  /** How long a lone request may wait for others to join it, in microseconds. */
  readonly maxQueueDelayUs: number
  /** Runner processes serving the deployment, each admitted against the node's capacity. */
  readonly replicas: number
  readonly loadPolicy: LoadPolicy
  /**
   * For `on_demand`: seconds without a request after which the runners are unloaded; 0: never;
   * `null`: the server's default (`BERTH_IDLE_TIMEOUT_S`).
   */
  readonly idleTimeoutS: number | null
  /**
   * Node labels a runner's node must carry (`{ "gpu": "a100" }`), for schedulers that place
   * runners on several nodes (`swarm`: `node.labels.gpu==a100`); empty: any node.
   */
  readonly nodeSelector: NodeSelector
}

export type NodeSelector = Readonly<Record<string, string>>

export const DEFAULT_SERVING: ServingSettings = {
  maxBatchSize: null,
  maxQueueDelayUs: 0,
  replicas: 1,
  loadPolicy: 'eager',
  idleTimeoutS: null,
  nodeSelector: {},
}

/** Whether two settings would run the same runners (the load policy and idle time aside). */
export function sameRunners(a: ServingSettings, b: ServingSettings): boolean {
  return (
    a.maxBatchSize === b.maxBatchSize &&
    a.maxQueueDelayUs === b.maxQueueDelayUs &&
    a.replicas === b.replicas &&
    sameSelector(a.nodeSelector, b.nodeSelector)
  )
}

/**
 * What a node selector may hold: a few labels, each a name and a value of characters a Swarm
 * placement constraint takes (its names: a letter or `_` first, two characters at least), so
 * that a constraint made of them is valid and says nothing else.
 */
export const NODE_SELECTOR_BOUNDS = {
  maxLabels: 16,
  key: /^[A-Za-z_][A-Za-z0-9._-]{1,62}$/,
  value: /^[A-Za-z0-9._-]{1,63}$/,
} as const

function sameSelector(a: NodeSelector, b: NodeSelector): boolean {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k])
}

/** Bounds on the settings a user may choose. */
export const MAX_BATCH_SIZE = 1024
export const MAX_QUEUE_DELAY_US = 1_000_000
export const MAX_REPLICAS = 16
/** A week: longer idle times are better said as 0 (never). */
export const MAX_IDLE_TIMEOUT_S = 604_800

/** Where the uploaded archive is kept, unchanged. */
export interface StoredArchive {
  /** Artifact-store key. */
  readonly key: string
  /** `file://…` or `s3://bucket/key`. */
  readonly url: string
  /** SHA-256 of the archive bytes, hex. */
  readonly sha256: string
  readonly sizeBytes: number
}

/**
 * What the uploader says a model is, wherever it is recorded: a namespace's model, an org
 * model, an upload request.
 */
export interface ModelDescriptor {
  readonly name: string
  readonly version: string
  readonly format: ModelFormat
  readonly framework: string | null
  readonly taskType: string | null
  readonly resources: ResourceRequirements
}

export interface Model extends ModelDescriptor {
  readonly namespaceId: string
  readonly organizationId: string
  readonly modelId: string
  /** Random id of the upload that created the model; names its archive and unpacked files. */
  readonly uploadId: string
  readonly serving: ServingSettings
  readonly archive: StoredArchive
  readonly manifest: Manifest
  readonly deployment: Deployment
  /**
   * Set when the model is an org model enabled in this namespace (its `uploadId` in the
   * registry): the archive is the organization's, shared, and outlives this record.
   */
  readonly orgUploadId: string | null
  readonly createdAt: string
  readonly updatedAt: string
}
