import { availableParallelism } from 'node:os'
import { CONVERTIBLE_FAMILIES } from '../domain/encoder-families.js'
import type { InferenceOutcome } from '../domain/inference-stats.js'
import { servedOnnx } from '../domain/manifest.js'
import type { Model, ServingSettings } from '../domain/model.js'
import { isRunnable, taskOf } from '../domain/serving-plan.js'
import { BerthError, isBerthError } from '../errors/berth-error.js'
import { ERROR_CODES } from '../errors/error-codes.js'
import { type Metrics, modelLabels } from '../observability/metrics.js'
import { type ModelStatistics, OipStatistics } from '../observability/oip-statistics.js'
import type { Signature, WireTensor } from '../tensors/tensor.js'
import { Batcher } from './batcher.js'
import { ByteBudget } from './byte-budget.js'
import { checkInputs } from './check-inputs.js'
import { checkSizes, heldBytes, type SizeLimits } from './check-sizes.js'
import { JsonCodec } from './json-codec.js'
import { batchable } from './model-config.js'
import type { EncodedResponse, InferRequest } from './oip-codec.js'
import type { RunnerPool } from './runner-pool.js'
import { oipTaskSignature, oipTexts, pickOutputs } from './task-oip.js'
import {
  type TaskParameters,
  type TaskResult,
  taskAnswer,
  taskRequest,
  taskResult,
  textTensor,
} from './task-requests.js'

export interface InferenceServiceOptions {
  /** Bound on one request, queueing included: 504 past it. */
  readonly timeoutMs: number
  /**
   * Requests handed to one runner at a time. Two keep it busy (the next request is already
   * there when one finishes); the rest wait here, where their queue time is measured.
   */
  readonly maxInFlightPerRunner?: number
  /**
   * Most rows run together by dynamic batching for models that do not set their own
   * `max_batch_size`; 1 turns it off. Only models whose every input and output has a dynamic
   * first dimension are batched.
   */
  readonly defaultMaxBatchSize?: number
  /** Requests waiting per deployment; one more gets 429 `queue_full`. Unset: no bound. */
  readonly maxQueueSize?: number
  /**
   * Most bytes of tensors one request brings into a runner: its decoded inputs and its outputs
   * where the signature tells their size (see `checkSizes`; the deployment's `memory_gb` bounds
   * them too). Unset: only the memory.
   */
  readonly maxTensorBytes?: number
  /**
   * Largest JSON part of a request body (the whole body, or a binary request's JSON header);
   * larger: 413 `request_body_too_large`. Unset: no bound but the body's.
   */
  readonly maxJsonBytes?: number
  /**
   * Bytes of memory that request bodies being read and decoded may take at once, server-wide
   * (see `reserveBody`); past it: 429 `decode_budget_full`. Unset: no bound.
   */
  readonly memoryBudgetBytes?: number
  /**
   * Worker threads that decode large JSON bodies and encode large JSON answers; one less than
   * the CPUs (1 to 4) unless said.
   */
  readonly codecThreads?: number
}

/**
 * What decoding a JSON body takes, per byte of it: the body, its text, the parsed arrays of
 * numbers (a JS array element costs 8 to 16 bytes, a nested row an array of its own), the
 * flattened values and the tensor's bytes, and the garbage collector's slack. Measured (bench/
 * request-memory.ts): a 66 MB body of FP32 rows of four took the server 10.2 times its size above
 * its resting memory. Binary tensor bytes cost themselves: the tensors are views of the body.
 */
const JSON_DECODE_FACTOR = 10

/**
 * JSON bodies up to this size, and answers with up to this many bytes of tensors written as
 * JSON, are handled on the event loop (a few milliseconds at most).
 */
const INLINE_CODEC_BYTES = 16 * 1024

/** A codec thread idle this long ends, and the memory its heap grew to goes back. */
const CODEC_THREAD_IDLE_MS = 10_000

/** Rows per batch unless configured: Triton's common default for dynamic-batch models. */
export const DEFAULT_MAX_BATCH_SIZE = 32

/** A deployed model, ready for requests. */
export interface Serving {
  readonly model: Model
  /** The deployment's runners (its replicas that are up), kept current; one per deployment. */
  readonly pool: RunnerPool
  readonly signature: Signature
}

/** A deployment held for one request: `release` once its answer is done. */
export interface Acquired extends Serving {
  release(): void
}

/** What the data plane needs of the deployments: which runners serve a model, and its signature. */
export interface ServingLookup {
  /**
   * The runners answering the model's requests, for one request: an on-demand model at rest is
   * loaded first, waiting up to `timeoutMs`. Throws `model_not_ready` (with the state and
   * reason) when the model is not served, `inference_timeout` when it is not ready in time.
   */
  acquire(model: Model, timeoutMs: number): Promise<Acquired>
  /**
   * The runners answering the model's requests now. Throws `model_not_ready` (with the state and
   * reason) when there is none (an on-demand model at rest has none until a request loads it).
   */
  serving(model: Model): Serving
  /** The inputs and outputs the model's serving runner reported, when it has one. */
  liveSignature(model: Model): Signature | undefined
}

/**
 * The data plane, whatever the transport: checks a request against the model's signature,
 * queues it for the model's runner, and records the outcome. Inference itself always runs in a
 * runner process, never here.
 */
export class InferenceService {
  readonly #deployments: ServingLookup
  readonly #metrics: Metrics
  readonly #stats: OipStatistics
  readonly #timeoutMs: number
  readonly #maxInFlight: number
  readonly #defaultMaxBatchSize: number
  readonly #maxQueueSize: number | undefined
  readonly #maxTensorBytes: number
  readonly #maxJsonBytes: number
  readonly #budget: ByteBudget
  readonly #codec: JsonCodec
  readonly #batchers = new WeakMap<
    RunnerPool,
    {
      readonly batcher: Batcher
      readonly settings: ServingSettings
      readonly memoryBytes: number
    }
  >()

  constructor(
    deps: {
      readonly deployments: ServingLookup
      readonly metrics: Metrics
      readonly stats?: OipStatistics
    },
    options: InferenceServiceOptions,
  ) {
    this.#deployments = deps.deployments
    this.#metrics = deps.metrics
    this.#stats = deps.stats ?? new OipStatistics()
    this.#timeoutMs = options.timeoutMs
    this.#maxInFlight = options.maxInFlightPerRunner ?? 2
    this.#defaultMaxBatchSize = options.defaultMaxBatchSize ?? DEFAULT_MAX_BATCH_SIZE
    this.#maxQueueSize = options.maxQueueSize
    this.#maxTensorBytes = options.maxTensorBytes ?? Number.POSITIVE_INFINITY
    this.#maxJsonBytes = options.maxJsonBytes ?? Number.POSITIVE_INFINITY
    this.#budget = new ByteBudget(options.memoryBudgetBytes ?? Number.POSITIVE_INFINITY)
    this.#codec = new JsonCodec({
      inlineBytes: INLINE_CODEC_BYTES,
      threads: options.codecThreads ?? Math.min(4, Math.max(1, availableParallelism() - 1)),
      idleMs: CODEC_THREAD_IDLE_MS,
    })
  }

  /**
   * Holds the memory a request body will take while it is read and decoded, against the
   * server-wide budget, before a byte of it is read: `bytes` is the body's length, `jsonBytes`
   * its JSON part's (`undefined`: not known before it is read). Returns the release, to call
   * once the answer is sent. Throws `request_body_too_large` (413) for JSON past its bound, and
   * `decode_budget_full` (429) while other requests hold the budget.
   */
  reserveBody(sizes: {
    readonly bytes: number
    readonly jsonBytes: number | undefined
  }): () => void {
    if (sizes.jsonBytes !== undefined) this.#checkJsonBytes(sizes.jsonBytes)
    const json = Math.min(sizes.jsonBytes ?? this.#maxJsonBytes, sizes.bytes)
    const need = json * JSON_DECODE_FACTOR + (sizes.bytes - json)
    const release = this.#budget.tryTake(need)
    if (release === undefined) {
      throw new BerthError(
        'decode_budget_full',
        'the server holds as many inference requests in memory as it allows (BERTH_INFER_MEMORY_BUDGET_BYTES); retry later',
        { details: { budget_bytes: this.#budget.capacity, request_bytes: need } },
      )
    }
    return release
  }

  /** Ends the threads that decode large bodies and encode large answers. */
  close(): Promise<void> {
    return this.#codec.close()
  }

  #checkJsonBytes(bytes: number): void {
    if (bytes <= this.#maxJsonBytes) return
    throw new BerthError(
      'request_body_too_large',
      `the request's JSON is ${bytes} bytes, more than the ${this.#maxJsonBytes} accepted: send large tensors as binary data (Inference-Header-Content-Length)`,
      { details: { json_bytes: bytes, limit_bytes: this.#maxJsonBytes } },
    )
  }

  /**
   * The model's inputs and outputs over the Open Inference Protocol: a task model's texts in and
   * results out (see `taskSignature`); else its ONNX graph's, or for a converted model its serving
   * runner's; `undefined` when not known (weights only, or not converted yet).
   */
  signatureOf(model: Model): Signature | undefined {
    return (
      oipTaskSignature(model) ??
      servedOnnx(model.manifest) ??
      this.#deployments.liveSignature(model)
    )
  }

  /**
   * Rows the model's requests are batched up to (its `max_batch_size`, or the server's default),
   * 0 when they are not: batching off, a signature that is not batchable, or a task model.
   */
  maxBatchSizeOf(model: Model): number {
    const signature = this.signatureOf(model)
    if (signature === undefined || taskOf(model) !== undefined || !batchable(signature)) return 0
    const max = model.serving.maxBatchSize ?? this.#defaultMaxBatchSize
    return max > 1 ? max : 0
  }

  /** The model's inference statistics since this process started. */
  statisticsOf(model: Model): ModelStatistics {
    return this.#stats.of(model)
  }

  /**
   * Throws `model_not_servable` (400) for a model berth cannot run, `model_not_ready` (503, with
   * the state and reason) for one that is not deployed now (an on-demand model at rest is not
   * ready, though a request would load it).
   */
  assertReady(model: Model): void {
    if (!isRunnable(model)) throw notServable(model)
    this.#deployments.serving(model)
  }

  /**
   * Runs one request body: Open Inference Protocol (JSON, or with the binary extension when
   * `headerLength` is given), or a task body (`{"input": [...]}`) for models with a tokenizer
   * and a task. Large JSON is decoded and encoded off the event loop (the body is handed over:
   * do not use it afterwards). Counts every outcome, malformed bodies included. Throws what `infer` throws,
   * `infer_request_invalid`, `input_data_invalid`, `task_not_supported` and
   * `request_body_too_large` (JSON past its bound).
   */
  inferOip(model: Model, body: Buffer, headerLength: number | undefined): Promise<EncodedResponse> {
    return this.#measured(model, async (deadline, hold) => {
      this.#checkJsonBytes(headerLength ?? body.length)
      const decoded = await this.#codec.decode(body, headerLength)
      if ('task' in decoded) {
        return taskAnswer(await this.#task(model, decoded.task, {}, deadline, hold))
      }
      const request = decoded.request
      const outputs = await this.#infer(model, request, deadline, hold)
      return this.#codec.encode(
        { modelName: model.name, modelVersion: model.version, id: request.id },
        outputs,
        request.binaryOutputs,
      )
    })
  }

  /**
   * Runs one decoded request. Throws the 400s of `checkInputs`, `model_not_servable`,
   * `model_not_ready` (503), `inference_failed` (400: the model refused the values),
   * `inference_timeout` / `runner_timeout` (504), `queue_full` (429) when too many requests
   * wait already, `runner_*` (503) when the runner broke, and 413s for a request that does not
   * fit its deployment: `inference_input_too_large` and `inference_output_too_large` before it
   * runs (see `checkSizes`), `inference_out_of_memory` when it did not fit after all.
   */
  infer(model: Model, request: InferRequest): Promise<WireTensor[]> {
    return this.#measured(model, (deadline, hold) => this.#infer(model, request, deadline, hold))
  }

  async #infer(
    model: Model,
    request: InferRequest,
    deadline: number,
    hold: Hold,
  ): Promise<WireTensor[]> {
    if (!isRunnable(model)) throw notServable(model)
    const texts = oipTexts(model, request)
    if (texts !== undefined) {
      const serving = await hold(model, deadline)
      const outputs = await this.#dispatch(serving, [textTensor(texts)], null, deadline, false)
      return pickOutputs(outputs, request.outputs)
    }
    const serving = await hold(model, deadline)
    const signature = servedOnnx(model.manifest) ?? serving.signature
    const inputs = checkInputs(signature, request.inputs, request.outputs)
    const bytes = checkSizes(signature, inputs, request.outputs, this.#limitsOf(serving.model))
    return this.#dispatch(serving, inputs, request.outputs, deadline, batchable(signature), {
      bytes: heldBytes(bytes),
    })
  }

  #limitsOf(model: Model): SizeLimits {
    return { memoryBytes: model.resources.memoryBytes, maxTensorBytes: this.#maxTensorBytes }
  }

  /**
   * Runs texts through the model's task pipeline: embeddings or label scores, with the tokens
   * read. Throws `task_not_supported` for a model without a pipeline, `infer_request_invalid`
   * for texts or parameters out of bounds, `text_too_long`, and what `infer` throws.
   */
  inferTexts(model: Model, texts: unknown, parameters: TaskParameters = {}): Promise<TaskResult> {
    return this.#measured(model, (deadline, hold) =>
      this.#task(model, texts, parameters, deadline, hold),
    )
  }

  async #task(
    model: Model,
    input: unknown,
    parameters: TaskParameters,
    deadline: number,
    hold: Hold,
  ): Promise<TaskResult> {
    const { task, count, tensors } = taskRequest(model, input)
    const serving = await hold(model, deadline)
    const outputs = await this.#dispatch(serving, tensors, null, deadline, false)
    return taskResult(task, count, outputs, parameters)
  }

  /** Queues the request for the model's runner (batched with others where it can), then runs it. */
  async #dispatch(
    serving: Serving,
    inputs: readonly WireTensor[],
    outputs: readonly string[] | null,
    deadline: number,
    canBatch: boolean,
    sizes: { readonly bytes?: number } = {},
  ): Promise<WireTensor[]> {
    const labels = modelLabels(serving.model)
    const queued = performance.now()
    let queueMs = 0
    const answer = await this.#batcherFor(serving).run(inputs, outputs, deadline, {
      canBatch,
      ...sizes,
      onStart: (waitedMs) => {
        queueMs = waitedMs
        this.#metrics.inferenceQueue.observe(labels, waitedMs / 1000)
      },
    })
    const computeMs = performance.now() - queued - queueMs
    const inferences = canBatch ? Math.max(1, inputs[0]?.shape[0] ?? 1) : 1
    this.#stats.ran(serving.model, { queueMs, computeMs, inferences })
    return answer
  }

  /**
   * Runs `work` with the request's deadline and a way to hold the model's deployment for it
   * (released when the work ends), recording its outcome and latency.
   */
  async #measured<T>(model: Model, work: (deadline: number, hold: Hold) => Promise<T>): Promise<T> {
    const started = performance.now()
    const held: Acquired[] = []
    const hold: Hold = async (m, deadline) => {
      const acquired = await this.#deployments.acquire(m, Math.max(0, deadline - performance.now()))
      held.push(acquired)
      return acquired
    }
    let outcome: InferenceOutcome = 'error'
    try {
      const result = await work(started + this.#timeoutMs, hold)
      outcome = 'success'
      return result
    } catch (err) {
      outcome = outcomeOf(err)
      throw err
    } finally {
      for (const acquired of held) acquired.release()
      const ms = performance.now() - started
      this.#metrics.observeInference(model, outcome, ms / 1000)
      this.#stats.finished(model, outcome === 'success', ms)
    }
  }

  /**
   * The deployment's one queue. New serving settings (a redeploy) get a new batcher; requests
   * already queued in the old one still run on the deployment's runners.
   */
  #batcherFor(serving: Serving): Batcher {
    const settings = serving.model.serving
    // A batch must fit the runner's memory as a request must (what each request holds, summed).
    const memoryBytes = serving.model.resources.memoryBytes
    const current = this.#batchers.get(serving.pool)
    if (
      current !== undefined &&
      current.settings.maxBatchSize === settings.maxBatchSize &&
      current.settings.maxQueueDelayUs === settings.maxQueueDelayUs &&
      current.memoryBytes === memoryBytes
    ) {
      return current.batcher
    }
    const labels = modelLabels(serving.model)
    const batcher = new Batcher(serving.pool, {
      maxBatchSize: settings.maxBatchSize ?? this.#defaultMaxBatchSize,
      maxBatchBytes: memoryBytes,
      maxQueueDelayUs: settings.maxQueueDelayUs,
      maxInFlight: this.#maxInFlight,
      ...(this.#maxQueueSize === undefined ? {} : { maxQueueSize: this.#maxQueueSize }),
      // Changes added: a redeploy's old batcher drains while the new one fills one series.
      onQueueChange: (delta) => this.#metrics.inferenceQueueDepth.inc(labels, delta),
      onBatch: (requests) => this.#metrics.batchSize.observe(labels, requests),
      onExecuted: (rows, ms) => this.#stats.executed(serving.model, rows, ms),
    })
    this.#batchers.set(serving.pool, { batcher, settings, memoryBytes })
    return batcher
  }
}

/** Holds the model's deployment for the request (loading it when on demand and at rest). */
type Hold = (model: Model, deadline: number) => Promise<Serving>

function notServable(model: Model): BerthError {
  return new BerthError(
    'model_not_servable',
    `model "${model.modelId}" (${model.format}) has no graph berth can run: upload an ONNX export, or weights of an encoder berth converts (config.json with model_type ${CONVERTIBLE_FAMILIES.join(', ')})`,
    { details: { model_id: model.modelId, model_format: model.format } },
  )
}

function outcomeOf(err: unknown): InferenceOutcome {
  if (!isBerthError(err)) return 'error'
  if (err.code === 'model_not_ready') return 'not_ready'
  const kind = ERROR_CODES[err.code]
  if (kind === 'deadline_exceeded') return 'timeout'
  if (kind === 'resource_exhausted') return 'rejected'
  // Too large for the model (413s) is the request's fault, as a bad input is.
  if (kind === 'invalid_argument' || kind === 'too_large') return 'bad_request'
  return 'error'
}
