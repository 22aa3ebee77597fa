import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import { DEPLOYMENT_STATES, type DeploymentState } from '../domain/deployment-state.js'
import {
  INFERENCE_OUTCOMES,
  type InferenceOutcome,
  type RecordedModel,
} from '../domain/inference-stats.js'
import type { ModelRef } from '../domain/model.js'

/** Every metric berth exports starts with this. */
export const METRIC_PREFIX = 'berth_'

type ModelLabel = 'namespace' | 'model' | 'version'
export type ModelLabels = Readonly<Record<ModelLabel, string>>

/**
 * Told of each inference request and cold load that the Prometheus series count: the hourly
 * records kept in the metadata store, the last hour's history kept in memory.
 */
export interface InferenceWatcher {
  /** A request ended with `outcome` after `ms` (queueing and a load it waited for included). */
  request(model: RecordedModel, outcome: InferenceOutcome, ms: number): void
  /** A request started a load of its (on-demand) model. */
  coldLoad(model: RecordedModel): void
  /** The model was deleted (the hourly records keep theirs: they have no `forget`). */
  forget?(model: ModelRef): void
}

/** The labels of a model's series: its namespace id, name and version. */
export function modelLabels(model: {
  readonly namespaceId: string
  readonly name: string
  readonly version: string
}): ModelLabels {
  return { namespace: model.namespaceId, model: model.name, version: model.version }
}

/** The metrics labelled by model (`namespace`, `model`, `version`), without their prefix. */
const PER_MODEL_METRICS = [
  'inference_requests_total',
  'inference_duration_seconds',
  'inference_queue_seconds',
  'inference_queue_depth',
  'inference_batch_size',
  'deployment_state',
  'runner_restarts_total',
  'model_load_duration_seconds',
  'model_evictions_total',
  'model_cold_loads_total',
  'model_cold_load_wait_seconds',
  'model_resident_bytes',
  'model_active_requests',
] as const

/** A sample's `namespace` label (label values escape `\\`, `"` and newlines). */
const NAMESPACE_LABEL = /([{,])namespace="((?:[^"\\]|\\.)*)"/

function unescapeLabel(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
}

function escapeLabel(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')
}

const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]

/** CPUs, memory and GPUs of the node. */
export interface NodeResources {
  readonly cpus: number
  readonly memoryBytes: number
  readonly gpus: number
}

/** The node gauges' `resource` label, per field. */
const RESOURCE_LABELS = { cpus: 'cpus', memoryBytes: 'memory_bytes', gpus: 'gpus' } as const

/** What the node gauges show. */
export interface NodeSnapshot {
  readonly capacity:
    | { readonly offered: NodeResources; readonly reserved: NodeResources }
    | undefined
  readonly models: ReadonlyArray<{
    readonly labels: ModelLabels
    readonly residentBytes: number | undefined
    readonly activeRequests: number
  }>
}

/**
 * berth's Prometheus metrics, in a registry of its own (never prom-client's global one), so
 * several apps in one process (tests) do not collide.
 */
export class Metrics {
  readonly registry = new Registry()
  readonly httpRequestDuration: Histogram<'method' | 'route' | 'status_code'>
  readonly uploadBytes: Counter
  /** Per model: `namespace`, `model` (name), `version`. */
  readonly inferenceRequests: Counter<ModelLabel | 'outcome'>
  readonly inferenceDuration: Histogram<ModelLabel>
  readonly inferenceQueue: Histogram<ModelLabel>
  /** Requests waiting for a runner now (running ones not counted). */
  readonly inferenceQueueDepth: Gauge<ModelLabel>
  readonly batchSize: Histogram<ModelLabel>
  readonly deploymentState: Gauge<ModelLabel | 'state'>
  readonly runnerRestarts: Counter<ModelLabel>
  readonly modelLoadDuration: Histogram<ModelLabel>
  /** On-demand deployments unloaded to make room for another model's load. */
  readonly evictions: Counter<ModelLabel>
  /** Loads of an on-demand model that a request started. */
  readonly coldLoads: Counter<ModelLabel>
  /** How long requests waited for their model to load (on-demand models at rest). */
  readonly coldLoadWait: Histogram<ModelLabel>
  /** What the node gauges show when scraped; nothing until `watchNode`. */
  #node: () => NodeSnapshot = () => ({ capacity: undefined, models: [] })
  /** Every namespace's name by id, for `render`; none known until `nameNamespaces`. */
  #namespaceNames: () => Promise<ReadonlyMap<string, string>> = async () => new Map()
  /** Counts capacity leaks when scraped; nothing to count until `watchCapacityLeaks`. */
  #countLeaks: () => number = () => 0
  /** Told of requests, cold loads and deleted models too; no one until `watchInference`. */
  readonly #inference: InferenceWatcher[] = []

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX })
    this.httpRequestDuration = new Histogram({
      name: `${METRIC_PREFIX}http_request_duration_seconds`,
      help: 'HTTP request latency by method, route pattern and status code',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    })
    this.uploadBytes = new Counter({
      name: `${METRIC_PREFIX}upload_bytes_total`,
      help: 'Bytes of model archives received (accepted or not)',
      registers: [this.registry],
    })
    const perModel = ['namespace', 'model', 'version'] as const
    const registers = [this.registry]
    this.inferenceRequests = new Counter({
      name: `${METRIC_PREFIX}inference_requests_total`,
      help: 'Inference requests by outcome (success, bad_request, not_ready, timeout, rejected, error)',
      labelNames: [...perModel, 'outcome'],
      registers,
    })
    this.inferenceDuration = new Histogram({
      name: `${METRIC_PREFIX}inference_duration_seconds`,
      help: 'Inference latency from request to response, queueing included',
      labelNames: perModel,
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.inferenceQueue = new Histogram({
      name: `${METRIC_PREFIX}inference_queue_seconds`,
      help: 'Time an inference request waited for a runner',
      labelNames: perModel,
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.inferenceQueueDepth = new Gauge({
      name: `${METRIC_PREFIX}inference_queue_depth`,
      help: 'Requests waiting for a runner now, running ones not counted (Triton: pending requests)',
      labelNames: perModel,
      registers,
    })
    this.batchSize = new Histogram({
      name: `${METRIC_PREFIX}inference_batch_size`,
      help: 'Requests run together in one runner call',
      labelNames: perModel,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    })
    this.deploymentState = new Gauge({
      name: `${METRIC_PREFIX}deployment_state`,
      help: '1 for the deployment state a model is in, 0 for the others',
      labelNames: [...perModel, 'state'],
      registers,
    })
    this.runnerRestarts = new Counter({
      name: `${METRIC_PREFIX}runner_restarts_total`,
      help: 'Runner processes restarted after a crash',
      labelNames: perModel,
      registers,
    })
    this.modelLoadDuration = new Histogram({
      name: `${METRIC_PREFIX}model_load_duration_seconds`,
      help: 'Time to start a runner and load the model in it',
      labelNames: perModel,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    })
    this.evictions = new Counter({
      name: `${METRIC_PREFIX}model_evictions_total`,
      help: 'Times an idle on-demand model was unloaded to make room for another model',
      labelNames: perModel,
      registers,
    })
    this.coldLoads = new Counter({
      name: `${METRIC_PREFIX}model_cold_loads_total`,
      help: 'Loads of an on-demand model started by a request for it',
      labelNames: perModel,
      registers,
    })
    this.coldLoadWait = new Histogram({
      name: `${METRIC_PREFIX}model_cold_load_wait_seconds`,
      help: 'Time a request waited for its model to load before it ran',
      labelNames: perModel,
      buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    })
    const metrics = this
    const resources = ['cpus', 'memoryBytes', 'gpus'] as const
    new Gauge({
      name: `${METRIC_PREFIX}node_capacity`,
      help: 'What this node offers deployments, by resource (CPUs after overcommit)',
      labelNames: ['resource'],
      registers,
      collect() {
        const { capacity } = metrics.#node()
        if (capacity === undefined) return
        for (const r of resources) this.set({ resource: RESOURCE_LABELS[r] }, capacity.offered[r])
      },
    })
    new Gauge({
      name: `${METRIC_PREFIX}node_reserved`,
      help: 'What deployments hold of the node now, by resource',
      labelNames: ['resource'],
      registers,
      collect() {
        const { capacity } = metrics.#node()
        if (capacity === undefined) return
        for (const r of resources) this.set({ resource: RESOURCE_LABELS[r] }, capacity.reserved[r])
      },
    })
    new Gauge({
      name: `${METRIC_PREFIX}model_resident_bytes`,
      help: "Memory a model's serving runners hold resident, last measured (its share in a shared runner process)",
      labelNames: perModel,
      registers,
      collect() {
        this.reset()
        for (const m of metrics.#node().models) {
          if (m.residentBytes !== undefined) this.set(m.labels, m.residentBytes)
        }
      },
    })
    new Gauge({
      name: `${METRIC_PREFIX}model_active_requests`,
      help: 'Requests holding a model now: queued, running, or waiting for it to load',
      labelNames: perModel,
      registers,
      collect() {
        this.reset()
        for (const m of metrics.#node().models) this.set(m.labels, m.activeRequests)
      },
    })
    new Gauge({
      name: `${METRIC_PREFIX}capacity_leaks`,
      help: 'Reserved capacity no deployment owns, plus deployments whose reservation does not match their state (always 0 unless berth has a bug)',
      registers,
      collect() {
        this.set(metrics.#countLeaks())
      },
    })
  }

  /** Has the node and per-model gauges show what `snapshot` says at each scrape. */
  watchNode(snapshot: () => NodeSnapshot): void {
    this.#node = snapshot
  }

  /** Has `render` label namespaces by the names `names` gives (id → name) at each scrape. */
  nameNamespaces(names: () => Promise<ReadonlyMap<string, string>>): void {
    this.#namespaceNames = names
  }

  /** Has `berth_capacity_leaks` report what `count` finds at each scrape. */
  watchCapacityLeaks(count: () => number): void {
    this.#countLeaks = count
  }

  /** Tells `watcher` too (after those given before) of every request and cold load from now on. */
  watchInference(watcher: InferenceWatcher): void {
    this.#inference.push(watcher)
  }

  /** Counts a finished inference request: its outcome and its latency. */
  observeInference(model: RecordedModel, outcome: InferenceOutcome, seconds: number): void {
    const labels = modelLabels(model)
    this.inferenceRequests.inc({ ...labels, outcome })
    this.inferenceDuration.observe(labels, seconds)
    for (const watcher of this.#inference) watcher.request(model, outcome, seconds * 1000)
  }

  /** Counts a load of an on-demand model that a request started. */
  observeColdLoad(model: RecordedModel): void {
    this.coldLoads.inc(modelLabels(model))
    for (const watcher of this.#inference) watcher.coldLoad(model)
  }

  /** Shows `state` as the model's one current deployment state. */
  setDeploymentState(model: ModelLabels, state: DeploymentState): void {
    for (const s of DEPLOYMENT_STATES) {
      this.deploymentState.set({ ...model, state: s }, s === state ? 1 : 0)
    }
  }

  /**
   * Drops every series of a deleted model, and tells the watchers that forget. prom-client
   * removes a series only by its whole label set, so the series with one more label are removed
   * value by value.
   */
  forgetModel(deleted: RecordedModel): void {
    const model = modelLabels(deleted)
    for (const metric of [
      this.inferenceDuration,
      this.inferenceQueue,
      this.inferenceQueueDepth,
      this.batchSize,
      this.runnerRestarts,
      this.modelLoadDuration,
      this.evictions,
      this.coldLoads,
      this.coldLoadWait,
    ]) {
      metric.remove(model)
    }
    for (const state of DEPLOYMENT_STATES) this.deploymentState.remove({ ...model, state })
    for (const outcome of INFERENCE_OUTCOMES) this.inferenceRequests.remove({ ...model, outcome })
    for (const watcher of this.#inference) watcher.forget?.(deleted)
  }

  /**
   * The exposition text and its content type: every series, the per-model ones labelled by
   * namespace name (see `nameNamespaces`; the id where the name is unknown) and, as names are
   * unique only within an organization, by `namespace_id` too. What the operator sees.
   */
  async render(): Promise<{ contentType: string; body: string }> {
    // A scrape must not fail with the metadata store (when metrics matter most): ids, then.
    const [text, names] = await Promise.all([
      this.registry.metrics(),
      this.#namespaceNames().catch(() => new Map<string, string>()),
    ])
    const body = relabel(
      text,
      (id) => {
        const name = names.get(id) ?? id
        return `namespace="${escapeLabel(name)}",namespace_id="${escapeLabel(id)}"`
      },
      { keepUnlabelled: true },
    )
    return { contentType: this.registry.contentType, body }
  }

  /**
   * The per-model series of the namespaces in `names` (id → name) only, their `namespace` label
   * the name: what one organization may see of its own models. Server-wide series (HTTP, process)
   * and other namespaces' series are left out.
   */
  async renderNamespaces(
    names: ReadonlyMap<string, string>,
  ): Promise<{ contentType: string; body: string }> {
    const families: string[] = []
    for (const name of PER_MODEL_METRICS) {
      const text = await this.registry.getSingleMetricAsString(`${METRIC_PREFIX}${name}`)
      families.push(
        // Only namespaced samples: one without the label is no organization's to see.
        relabel(
          text,
          (id) => {
            const shown = names.get(id)
            return shown === undefined ? undefined : `namespace="${escapeLabel(shown)}"`
          },
          { keepUnlabelled: false },
        ),
      )
    }
    return { contentType: this.registry.contentType, body: `${families.join('\n').trimEnd()}\n` }
  }
}

/**
 * `text` with each sample's `namespace` label (a namespace id) replaced by what `labels` gives
 * for the id; a sample it gives `undefined` for is left out, and so is a sample without the
 * label unless `keepUnlabelled`. Comment lines stay.
 */
function relabel(
  text: string,
  labels: (namespaceId: string) => string | undefined,
  { keepUnlabelled }: { readonly keepUnlabelled: boolean },
): string {
  return text
    .split('\n')
    .flatMap((line) => {
      if (line.startsWith('#')) return [line]
      const match = NAMESPACE_LABEL.exec(line)
      if (match === null) return keepUnlabelled || line === '' ? [line] : []
      const shown = labels(unescapeLabel(match[2] ?? ''))
      if (shown === undefined) return []
      return [line.replace(NAMESPACE_LABEL, (_, before: string) => `${before}${shown}`)]
    })
    .join('\n')
}
