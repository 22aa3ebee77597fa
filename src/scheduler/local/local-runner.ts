import type { LoadTarget } from '../../domain/serving-plan.js'
import { BerthError, isBerthError } from '../../errors/berth-error.js'
import type { ErrorCode } from '../../errors/error-codes.js'
import { withServerPathsHidden } from '../../errors/hide-server-paths.js'
import { activeCallContext } from '../../observability/tracing.js'
import type { Signature, WireTensor } from '../../tensors/tensor.js'
import type { Runner, RunnerEnd, RunnerEndCause } from '../scheduler.js'
import { residentBytes } from './resident-memory.js'
import type { WorkerExit, WorkerProcess } from './worker-process.js'

/** A `load` message's fields that say what to load: the same from every runner client. */
export function loadFields(target: LoadTarget) {
  return {
    modelPath: target.path,
    ...(target.weights === undefined ? {} : { weights: target.weights }),
    ...(target.task === undefined ? {} : { task: target.task }),
    ...(target.archive === undefined ? {} : { archive: { ...target.archive, root: target.root } }),
  }
}

export interface LocalRunnerOptions {
  readonly intraOpThreads: number
  /** Resident memory past which the runner is killed (`memory_limit_exceeded`). */
  readonly memoryLimitBytes: number
  /** How often resident memory is sampled. */
  readonly memoryPollMs: number
  readonly killGraceMs: number
}

/**
 * A runner child process on this machine, with its memory watched: `memory_gb` cannot be
 * enforced by Node itself (ONNX Runtime allocates outside the V8 heap), so the resident set is
 * sampled and the process killed past the limit. Past it while running requests (or right
 * after one: a fast request may end between two samples, its memory still held), the requests
 * are to blame: they fail with `inference_out_of_memory` and the runner ends as
 * `request_out_of_memory`; past it while loading or idle, the model is (`memory_limit_exceeded`).
 */
export class LocalRunner implements Runner {
  readonly id: string
  readonly ended: Promise<RunnerEnd>
  readonly #worker: WorkerProcess
  readonly #options: LocalRunnerOptions
  readonly #watch: NodeJS.Timeout
  #stopRequested = false
  /** The loaded model's folder: the runner's errors show paths relative to it. */
  #root = ''
  #stopping: Promise<void> | undefined
  /** Inference calls outstanding, oldest first: the runner runs them in this order. */
  readonly #inferring: object[] = []
  /** Whether the runner went while a request ran in it (its connection closed mid-request). */
  #diedRunning = false
  /** The call running when the runner went past its memory: the one to blame. */
  #culprit: object | undefined
  /** Whether an inference call was outstanding at some time since the last memory sample. */
  #inferredSinceSample = false
  /** The last memory sample. */
  #resident: number | undefined

  constructor(worker: WorkerProcess, options: LocalRunnerOptions) {
    this.#worker = worker
    this.#options = options
    // A runner on another machine (a Swarm task elsewhere) has no pid here.
    if (worker.pid === undefined) remoteRunners += 1
    this.id = worker.pid === undefined ? `remote-${remoteRunners}` : String(worker.pid)
    this.#watch = setInterval(() => void this.#checkMemory(), options.memoryPollMs)
    this.#watch.unref()
    this.ended = worker.exited.then((exit) => {
      clearInterval(this.#watch)
      return this.#endOf(exit)
    })
  }

  get inFlight(): number {
    return this.#worker.inFlight
  }

  /** The runner's process id. */
  get pid(): number | undefined {
    return this.#worker.pid
  }

  residentBytes(): number | undefined {
    return this.#resident
  }

  async load(target: LoadTarget, timeoutMs: number): Promise<Signature> {
    this.#root = target.root
    const answer = await this.#worker
      .call(
        {
          type: 'load',
          slot: MODEL_SLOT,
          intraOpThreads: this.#options.intraOpThreads,
          ...loadFields(target),
        },
        timeoutMs,
      )
      .catch((err: unknown) => {
        throw withServerPathsHidden(err, target.root)
      })
    if (answer.type !== 'loaded') throw unexpectedAnswer(answer.type)
    // Measured at once: what a loaded model holds is known before the first periodic sample.
    const pid = this.#worker.pid
    if (pid !== undefined) this.#resident = (await residentBytes(pid)) ?? this.#resident
    return { inputs: answer.inputs, outputs: answer.outputs }
  }

  async infer(
    inputs: readonly WireTensor[],
    outputs: readonly string[] | null,
    timeoutMs: number,
  ): Promise<WireTensor[]> {
    const call = {}
    this.#inferring.push(call)
    this.#inferredSinceSample = true
    try {
      const answer = await this.#worker
        .call(
          { type: 'infer', slot: MODEL_SLOT, inputs, outputs, ...activeCallContext() },
          timeoutMs,
        )
        .catch(async (err: unknown) => {
          const running = this.#inferring[0] === call
          if (isBerthError(err, 'runner_crashed')) this.#diedRunning ||= running
          const blamed = await this.#blameKernel(this.#blame(err, call), running)
          throw withServerPathsHidden(blamed, this.#root)
        })
      if (answer.type !== 'result') throw unexpectedAnswer(answer.type)
      return [...answer.outputs]
    } finally {
      this.#inferring.splice(this.#inferring.indexOf(call), 1)
      this.#inferredSinceSample = true
    }
  }

  /**
   * Only the request that was running when the runner went past its memory is to blame; those
   * queued behind it in the runner (or sent once it was killed) lost their runner, as in a
   * crash, and may be sent again.
   */
  #blame(err: unknown, call: object): unknown {
    const killed = err === this.#worker.failure
    if (!killed || !isBerthError(err, 'inference_out_of_memory') || call === this.#culprit) {
      return err
    }
    return new BerthError(
      'runner_crashed',
      "the model's runner was replaced before this request ran: a request before it took the runner past its memory_gb",
      { cause: err },
    )
  }

  /**
   * A runner in a container is held to its memory by the kernel, which kills it outright: the
   * connection closes (`runner_crashed`) before the engine says why. The request that was
   * running when that happened is to blame, as the memory watch blames it: it fails with 413
   * `inference_out_of_memory`, once the engine's OOM flag is known (at most `OOM_VERDICT_MS`).
   */
  async #blameKernel(err: unknown, running: boolean): Promise<unknown> {
    if (!isBerthError(err, 'runner_crashed') || !running) return err
    const exit = await Promise.race([
      this.#worker.exited,
      new Promise<undefined>((resolve) =>
        setTimeout(() => resolve(undefined), OOM_VERDICT_MS).unref(),
      ),
    ])
    if (exit?.oomKilled !== true) return err
    const limit = this.#options.memoryLimitBytes
    return new BerthError(
      'inference_out_of_memory',
      `a request took the model's runner past its memory_gb (${limit} bytes) and the kernel killed it; the runner was replaced: send smaller requests, or deploy the model with more memory_gb`,
      { details: { limit_bytes: limit, killed_by: 'kernel' }, cause: err },
    )
  }

  get failed(): boolean {
    return this.#worker.failure !== undefined
  }

  stop(drainMs: number): Promise<void> {
    this.#stopping ??= (async () => {
      this.#stopRequested = true
      await this.#worker.idle(drainMs)
      await this.#worker.stop()
    })()
    return this.#stopping
  }

  async #checkMemory(): Promise<void> {
    const pid = this.#worker.pid
    if (pid === undefined || this.#worker.failure !== undefined) return
    const inferred = this.#inferredSinceSample
    this.#inferredSinceSample = false
    const bytes = await residentBytes(pid)
    this.#resident = bytes ?? this.#resident
    const limit = this.#options.memoryLimitBytes
    if (bytes === undefined || bytes <= limit) return
    const details = { resident_bytes: bytes, limit_bytes: limit }
    const running = this.#inferring[0]
    this.#culprit = running
    this.#worker.kill(
      inferred || running !== undefined
        ? new BerthError(
            'inference_out_of_memory',
            `a request took the model's runner to ${bytes} bytes of memory, past its memory_gb (${limit} bytes), and the runner was replaced: send smaller requests, or deploy the model with more memory_gb`,
            { details },
          )
        : new BerthError(
            'runner_memory_limit_exceeded',
            `the runner used ${bytes} bytes of memory, over its limit of ${limit}`,
            { details },
          ),
    )
  }

  #endOf(exit: WorkerExit): RunnerEnd {
    const failure = this.#worker.failure
    const cause = failure === undefined ? undefined : CAUSE_BY_CODE[failure.code]
    if (failure !== undefined && cause !== undefined) return { cause, message: failure.message }
    if (exit.oomKilled === true && this.#diedRunning) {
      return {
        cause: 'request_out_of_memory',
        message: `a request took the runner past its memory limit of ${this.#options.memoryLimitBytes} bytes (memory_gb) and the kernel killed it`,
      }
    }
    if (exit.oomKilled === true) {
      const limit = this.#options.memoryLimitBytes
      return {
        cause: 'memory_limit_exceeded',
        message: `the kernel killed the runner at its memory limit of ${limit} bytes (memory_gb)`,
      }
    }
    if (this.#stopRequested) return { cause: 'stopped', message: 'the runner was stopped' }
    const how = exit.signal === null ? `with code ${exit.code}` : `on ${exit.signal}`
    return { cause: 'crashed', message: `the runner process exited ${how}` }
  }
}

/** How long a request that lost its runner waits to learn whether the kernel killed it. */
const OOM_VERDICT_MS = 3000

/** How many runners without a pid here have been numbered (their ids). */
let remoteRunners = 0

/** The process holds one model, always in this slot. */
const MODEL_SLOT = 0

/** Failures that say why the runner ended better than its exit status does. */
export const CAUSE_BY_CODE: Partial<Record<ErrorCode, RunnerEndCause>> = {
  runner_memory_limit_exceeded: 'memory_limit_exceeded',
  inference_out_of_memory: 'request_out_of_memory',
  runner_protocol_error: 'protocol_error',
  runner_timeout: 'unresponsive',
  runner_unresponsive: 'unresponsive',
}

/** A runner that answered a request with the wrong kind of message broke the protocol. */
export function unexpectedAnswer(type: string): BerthError {
  return new BerthError('runner_protocol_error', `the runner answered with an unexpected ${type}`)
}
