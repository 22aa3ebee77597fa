import { CONVERTIBLE_FAMILIES } from '../conversion/encoder-to-onnx.js'
import type { DeploymentManager } from '../deployments/deployment-manager.js'
import { isRunnable } from '../deployments/serving-plan.js'
import { servedOnnx } from '../domain/manifest.js'
import type { Model } from '../domain/model.js'
import { BerthError, isBerthError } from '../errors/berth-error.js'
import { ERROR_CODES } from '../errors/error-codes.js'
import type { Metrics } from '../observability/metrics.js'
import type { WireTensor } from '../runtime/worker-protocol.js'
import type { Runner } from '../scheduler/scheduler.js'
import { checkInputs, type Signature } from './check-inputs.js'
import {
  decodeInferRequest,
  type EncodedResponse,
  encodeInferResponse,
  type InferRequest,
} from './oip-codec.js'

export interface InferenceServiceOptions {
  /** Bound on one request, queueing included: 504 past it. */
  readonly timeoutMs: number
  /**
   * Requests handed to one runner at a time. Two keep it busy (the next request is already
   * there when one finishes); the rest wait here, where their queue time is measured.
   */
  readonly maxInFlightPerRunner?: number
}

type Outcome = 'success' | 'bad_request' | 'not_ready' | 'timeout' | 'error'

/**
 * The data plane, whatever the transport: checks a request against the model's signature,
 * queues it for the model's runner, and records the outcome. Inference itself always runs in a
 * runner process, never here.
 */
export class InferenceService {
  readonly #deployments: DeploymentManager
  readonly #metrics: Metrics
  readonly #timeoutMs: number
  readonly #maxInFlight: number
  readonly #queues = new WeakMap<Runner, RunnerQueue>()

  constructor(
    deps: { readonly deployments: DeploymentManager; readonly metrics: Metrics },
    options: InferenceServiceOptions,
  ) {
    this.#deployments = deps.deployments
    this.#metrics = deps.metrics
    this.#timeoutMs = options.timeoutMs
    this.#maxInFlight = options.maxInFlightPerRunner ?? 2
  }

  /**
   * The model's inputs and outputs: from its ONNX graph, or for a converted model from its
   * serving runner; `undefined` when not known (weights only, or not converted yet).
   */
  signatureOf(model: Model): Signature | undefined {
    return servedOnnx(model.manifest) ?? this.#deployments.liveSignature(model)
  }

  /**
   * Throws `model_not_servable` (400) for a model berth cannot run, `model_not_ready` (503, with
   * the state and reason) for one that is not deployed now.
   */
  assertReady(model: Model): void {
    if (!isRunnable(model)) throw notServable(model)
    this.#deployments.serving(model)
  }

  /**
   * Runs one Open Inference Protocol request body (JSON, or with the binary extension when
   * `headerLength` is given) and encodes the answer. Counts every outcome, malformed bodies
   * included. Throws what `decodeInferRequest` and `infer` throw.
   */
  async inferOip(
    model: Model,
    body: Buffer,
    headerLength: number | undefined,
  ): Promise<EncodedResponse> {
    let request: InferRequest
    try {
      request = decodeInferRequest(body, headerLength)
    } catch (err) {
      this.#count(labelsOf(model), outcomeOf(err))
      throw err
    }
    const outputs = await this.infer(model, request)
    return encodeInferResponse(
      { modelName: model.name, modelVersion: model.version, id: request.id },
      outputs,
      request.binaryOutputs,
    )
  }

  /**
   * Runs one request. Throws the 400s of `checkInputs`, `model_not_ready` (503),
   * `inference_failed` (400: the model refused the values), `inference_timeout` /
   * `runner_timeout` (504) and `runner_*` (503) when the runner broke.
   */
  async infer(model: Model, request: InferRequest): Promise<WireTensor[]> {
    const started = performance.now()
    const labels = labelsOf(model)
    try {
      if (!isRunnable(model)) throw notServable(model)
      const serving = this.#deployments.serving(model)
      const signature = servedOnnx(model.manifest) ?? serving.signature
      const inputs = checkInputs(signature, request.inputs, request.outputs)
      const deadline = started + this.#timeoutMs
      const queue = this.#queueFor(serving.runner)
      const release = await queue.acquire(deadline)
      this.#metrics.inferenceQueue.observe(labels, (performance.now() - started) / 1000)
      try {
        const remaining = Math.max(1, Math.ceil(deadline - performance.now()))
        const outputs = await serving.runner.infer(inputs, request.outputs, remaining)
        this.#metrics.batchSize.observe(labels, 1)
        this.#count(labels, 'success')
        return outputs
      } finally {
        release()
      }
    } catch (err) {
      this.#count(labels, outcomeOf(err))
      throw err
    } finally {
      this.#metrics.inferenceDuration.observe(labels, (performance.now() - started) / 1000)
    }
  }

  #queueFor(runner: Runner): RunnerQueue {
    let queue = this.#queues.get(runner)
    if (queue === undefined) {
      queue = new RunnerQueue(this.#maxInFlight)
      this.#queues.set(runner, queue)
    }
    return queue
  }

  #count(labels: Record<string, string>, outcome: Outcome): void {
    this.#metrics.inferenceRequests.inc({ ...labels, outcome })
  }
}

function notServable(model: Model): BerthError {
  return new BerthError(
    'model_not_servable',
    `model "${model.modelId}" (${model.format}) has no graph berth can run: upload an ONNX export, or weights of an encoder berth converts (config.json with model_type ${CONVERTIBLE_FAMILIES.join(', ')})`,
    { details: { model_id: model.modelId, model_format: model.format } },
  )
}

function labelsOf(model: Model): Record<'namespace' | 'model' | 'version', string> {
  return { namespace: model.namespaceId, model: model.name, version: model.version }
}

function outcomeOf(err: unknown): Outcome {
  if (!isBerthError(err)) return 'error'
  if (err.code === 'model_not_ready') return 'not_ready'
  const kind = ERROR_CODES[err.code]
  if (kind === 'deadline_exceeded') return 'timeout'
  if (kind === 'invalid_argument') return 'bad_request'
  return 'error'
}

interface Waiter {
  readonly resolve: () => void
  readonly timer: NodeJS.Timeout
}

/** First come, first served, at most `limit` requests on the runner at once. */
class RunnerQueue {
  readonly #limit: number
  readonly #waiting: Waiter[] = []
  #running = 0

  constructor(limit: number) {
    this.#limit = limit
  }

  /** Resolves a release function once a slot is free; throws `inference_timeout` at `deadline`. */
  acquire(deadline: number): Promise<() => void> {
    if (this.#running < this.#limit) {
      this.#running += 1
      return Promise.resolve(this.#releaser())
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve: () => {
          clearTimeout(waiter.timer)
          resolve(this.#releaser())
        },
        timer: setTimeout(
          () => {
            const index = this.#waiting.indexOf(waiter)
            if (index >= 0) this.#waiting.splice(index, 1)
            reject(
              new BerthError('inference_timeout', 'the request waited too long for its runner'),
            )
          },
          Math.max(0, deadline - performance.now()),
        ),
      }
      this.#waiting.push(waiter)
    })
  }

  #releaser(): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.#waiting.shift()
      // The slot passes straight to the next request.
      if (next !== undefined) next.resolve()
      else this.#running -= 1
    }
  }
}
