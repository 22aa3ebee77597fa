import type { LoadTarget, RunnerRuntime } from '../../domain/serving-plan.js'
import { BerthError, isBerthError } from '../../errors/berth-error.js'
import { activeCallContext } from '../../observability/tracing.js'
import type { Signature, WireTensor } from '../../tensors/tensor.js'
import type { RunnerEnd } from '../scheduler.js'
import { CAUSE_BY_CODE, loadFields, unexpectedAnswer } from './local-runner.js'
import { residentBytes } from './resident-memory.js'
import { SharedRunner, type SharedRunnerOptions, type SlotHost } from './shared-runner.js'
import type { WorkerProcess } from './worker-process.js'

export interface SharedRunnerHostOptions {
  readonly organizationId: string
  readonly runtime: RunnerRuntime
  /** Models the process may hold at once. */
  readonly maxModels: number
  /** What its models may be expected to hold together (files first, measured shares once loaded). */
  readonly maxBytes: number
  /** How often resident memory is sampled. */
  readonly memoryPollMs: number
  /** Bound on freeing a slot; past it the process is presumed hung and ended. */
  readonly unloadTimeoutMs: number
  /** Told the label of each model moved out for going past its memory share. */
  readonly onMoved: (label: string) => void
}

/**
 * One runner process holding several models of one organization, each in its own slot and seen
 * through its own `SharedRunner`. The process's memory limit is the sum of its models' own
 * (`memory_gb`); each model's share is what its load added to the resident set, plus what the
 * process grew by while only its requests ran. A model past its own share, or to blame when the
 * process goes past its limit (its request was running), is moved out: its slot is freed and its
 * neighbours serve on. Only a process that keeps growing while a model is moved out (past its
 * limit plus the moving models' memory again), or one past its limit with no model to blame, is
 * killed; then every model it held ends.
 */
export class SharedRunnerHost implements SlotHost {
  readonly organizationId: string
  readonly runtime: RunnerRuntime
  /** Resolves once the process has started (rejects if it does not). */
  readonly ready: Promise<WorkerProcess>
  readonly #options: SharedRunnerHostOptions
  readonly #views = new Set<SharedRunner>()
  #worker: WorkerProcess | undefined
  #nextSlot = 0
  #closing = false
  #watch: NodeJS.Timeout | undefined
  /** Loads run one after another, so each one's growth of the resident set is its own. */
  #loads: Promise<unknown> = Promise.resolve()
  /** Inference calls outstanding, oldest first: the process runs them in this order. */
  readonly #inferring: SharedRunner[] = []
  /** Models with a request outstanding at some time since the last sample. */
  #active = new Set<SharedRunner>()
  #loadedSinceSample = false
  #resident: number | undefined
  /** Models to blame for the process being killed past its memory (they end as its cause). */
  #blamed = new Set<SharedRunner>()

  constructor(worker: Promise<WorkerProcess>, options: SharedRunnerHostOptions) {
    this.organizationId = options.organizationId
    this.runtime = options.runtime
    this.#options = options
    this.ready = worker.then(
      (started) => {
        this.#worker = started
        this.#watch = setInterval(() => void this.#sample(), options.memoryPollMs)
        this.#watch.unref()
        void started.exited.then(() => this.#onExit(started))
        return started
      },
      (err: unknown) => {
        this.#closing = true
        const message = err instanceof Error ? err.message : String(err)
        for (const view of this.#views) view.end({ cause: 'crashed', message })
        this.#views.clear()
        throw err
      },
    )
    // A start that fails is seen by whoever awaits `ready`; this copy only keeps it handled.
    this.ready.catch(() => undefined)
  }

  get pid(): number | undefined {
    return this.#worker?.pid
  }

  get failure(): BerthError | undefined {
    return this.#worker?.failure
  }

  /** How many models the process holds (those loading and leaving included). */
  get size(): number {
    return this.#views.size
  }

  /** Whether a model of `label` expected to hold `bytes` may join. */
  fits(label: string, bytes: number): boolean {
    if (this.#closing || this.failure !== undefined) return false
    if (this.#views.size >= this.#options.maxModels) return false
    let expected = bytes
    for (const view of this.#views) {
      // Replicas of one model in one process would only queue behind each other.
      if (view.label === label) return false
      expected += view.share ?? view.modelBytes
    }
    return expected <= this.#options.maxBytes
  }

  /** A slot for a new model; its view is usable once `ready` resolves. */
  attach(options: Omit<SharedRunnerOptions, 'slot'>): SharedRunner {
    const view = new SharedRunner(this, { ...options, slot: this.#nextSlot++ })
    this.#views.add(view)
    return view
  }

  load(view: SharedRunner, target: LoadTarget, timeoutMs: number): Promise<Signature> {
    const turn = this.#loads.then(() => this.#load(view, target, timeoutMs))
    this.#loads = turn.catch(() => undefined)
    return turn
  }

  async #load(view: SharedRunner, target: LoadTarget, timeoutMs: number): Promise<Signature> {
    const worker = this.#started()
    const pid = worker.pid
    const before = pid === undefined ? undefined : await residentBytes(pid)
    this.#loadedSinceSample = true
    const answer = await worker.call(
      {
        type: 'load',
        slot: view.slot,
        intraOpThreads: view.intraOpThreads,
        ...loadFields(target),
      },
      timeoutMs,
    )
    if (answer.type !== 'loaded') throw unexpectedAnswer(answer.type)
    const after = pid === undefined ? undefined : await residentBytes(pid)
    if (before !== undefined && after !== undefined) {
      view.share = Math.max(0, after - before)
      this.#resident = after
    }
    return { inputs: answer.inputs, outputs: answer.outputs }
  }

  async infer(
    view: SharedRunner,
    inputs: readonly WireTensor[],
    outputs: readonly string[] | null,
    timeoutMs: number,
  ): Promise<WireTensor[]> {
    const worker = this.#started()
    this.#inferring.push(view)
    this.#active.add(view)
    try {
      const answer = await worker
        .call(
          { type: 'infer', slot: view.slot, inputs, outputs, ...activeCallContext() },
          timeoutMs,
        )
        .catch((err: unknown) => {
          throw this.#blame(err, view)
        })
      if (answer.type !== 'result') throw unexpectedAnswer(answer.type)
      return [...answer.outputs]
    } finally {
      this.#inferring.splice(this.#inferring.indexOf(view), 1)
      this.#active.add(view)
    }
  }

  /** A request of a model that did not take the process past its memory lost it, as in a crash. */
  #blame(err: unknown, view: SharedRunner): unknown {
    const killed = err === this.failure
    if (!killed || !isBerthError(err, 'inference_out_of_memory') || this.#blamed.has(view)) {
      return err
    }
    return new BerthError(
      'runner_crashed',
      "the model's shared runner process was killed: another model's request took it past its memory",
      { cause: err },
    )
  }

  async release(view: SharedRunner, end: RunnerEnd): Promise<void> {
    const worker = this.#worker
    if (!this.#views.has(view) || worker === undefined) {
      this.#views.delete(view)
      view.end(end)
      return
    }
    if (this.#views.size > 1) {
      await worker
        .call({ type: 'unload', slot: view.slot }, this.#options.unloadTimeoutMs)
        .catch(() => undefined)
    }
    if (worker.failure !== undefined) {
      // The process is ending: its exit ends every model it holds, this one included.
      await worker.exited
      view.end(end)
      return
    }
    if (!this.#views.delete(view)) return
    if (end.cause === 'moved') this.#options.onMoved(view.label)
    if (this.#views.size === 0) {
      this.#closing = true
      await worker.stop()
    }
    view.end(end)
  }

  residentOf(view: SharedRunner): number | undefined {
    const resident = this.#resident
    if (resident === undefined || view.share === undefined) return undefined
    let shares = 0
    for (const v of this.#views) shares += v.share ?? 0
    return view.share + Math.max(0, resident - shares) / Math.max(1, this.#views.size)
  }

  /** Stops the process now, ending every model it holds. Idempotent. */
  async stop(): Promise<void> {
    this.#closing = true
    await (await this.ready.catch(() => undefined))?.stop()
  }

  #started(): WorkerProcess {
    if (this.#worker === undefined) {
      throw new BerthError('runner_crashed', 'the shared runner process has not started')
    }
    return this.#worker
  }

  async #sample(): Promise<void> {
    const worker = this.#worker
    const pid = worker?.pid
    if (worker === undefined || pid === undefined || worker.failure !== undefined) return
    const active = this.#active
    const loaded = this.#loadedSinceSample
    this.#active = new Set(this.#inferring)
    this.#loadedSinceSample = false
    const bytes = await residentBytes(pid)
    if (bytes === undefined || worker.failure !== undefined || this.#closing) return
    const previous = this.#resident
    this.#resident = bytes
    const views = [...this.#views]
    // Growth while one model alone ran requests (and nothing loaded) is that model's.
    const [sole] = active
    if (active.size === 1 && !loaded && previous !== undefined && sole?.share !== undefined) {
      sole.share = Math.max(0, sole.share + bytes - previous)
    }
    const limit = views.reduce((sum, v) => sum + v.memoryBytes, 0)
    const moving = views.filter((v) => v.moving)
    if (moving.length > 0) {
      // A model being moved out may finish its requests; the process may not grow without end.
      const ceiling = limit + moving.reduce((sum, v) => sum + v.memoryBytes, 0)
      if (bytes > ceiling) this.#kill(bytes, ceiling, moving)
      return
    }
    const overShare = largest(views.filter((v) => (v.share ?? 0) > v.memoryBytes))
    if (bytes <= limit) {
      if (overShare !== undefined && views.length > 1) this.#moveOut(overShare, bytes, limit)
      return
    }
    const culprit =
      this.#inferring[0] ??
      (active.size === 1 ? sole : undefined) ??
      overShare ??
      (views.length > 1 ? largest(views) : undefined)
    if (culprit === undefined) this.#kill(bytes, limit, [])
    else this.#moveOut(culprit, bytes, limit)
  }

  #moveOut(view: SharedRunner, bytes: number, limit: number): void {
    const details = {
      resident_bytes: bytes,
      limit_bytes: limit,
      model_share_bytes: view.share ?? null,
      model_limit_bytes: view.memoryBytes,
    }
    view.moveOut(
      `the model went past its memory share in a shared runner process (${view.share ?? '?'} of ${view.memoryBytes} bytes; the process held ${bytes} of ${limit}) and was moved to a process of its own`,
      details,
    )
  }

  /** Kills the process: the models being moved out are to blame, or (none) all of them. */
  #kill(bytes: number, limit: number, culprits: readonly SharedRunner[]): void {
    this.#blamed = new Set(culprits)
    for (const view of culprits) this.#options.onMoved(view.label)
    const [culprit] = culprits
    // The details speak of the model, as a process of its own would: its share, its memory_gb.
    const details =
      culprit === undefined
        ? { resident_bytes: bytes, limit_bytes: limit }
        : {
            resident_bytes: Math.max(culprit.share ?? 0, culprit.memoryBytes + 1),
            limit_bytes: culprit.memoryBytes,
            process_resident_bytes: bytes,
            process_limit_bytes: limit,
          }
    this.#worker?.kill(
      culprit !== undefined
        ? new BerthError(
            'inference_out_of_memory',
            `a request took the model past its memory_gb (${culprit.memoryBytes} bytes) and its shared runner process to ${bytes} bytes, and the process was replaced: send smaller requests, or deploy the model with more memory_gb`,
            { details },
          )
        : new BerthError(
            'runner_memory_limit_exceeded',
            `the shared runner used ${bytes} bytes of memory, over its limit of ${limit}`,
            { details },
          ),
    )
  }

  #onExit(worker: WorkerProcess): void {
    clearInterval(this.#watch)
    this.#closing = true
    const failure = worker.failure
    const mapped = failure === undefined ? undefined : CAUSE_BY_CODE[failure.code]
    for (const view of this.#views) view.end(this.#endOf(view, failure, mapped))
    this.#views.clear()
  }

  #endOf(
    view: SharedRunner,
    failure: BerthError | undefined,
    mapped: RunnerEnd['cause'] | undefined,
  ): RunnerEnd {
    if (view.stopRequested) return { cause: 'stopped', message: 'the runner was stopped' }
    if (failure === undefined) return { cause: 'crashed', message: 'the runner process exited' }
    // Neighbours of a model whose request blew the process up lost it, as in a crash.
    if (mapped === 'request_out_of_memory' && !this.#blamed.has(view)) {
      return { cause: 'crashed', message: `a neighbouring model: ${failure.message}` }
    }
    return { cause: mapped ?? 'crashed', message: failure.message }
  }
}

/** The model whose share most exceeds its own memory (or the largest share). */
function largest(views: readonly SharedRunner[]): SharedRunner | undefined {
  let best: SharedRunner | undefined
  for (const v of views) {
    if (best === undefined || (v.share ?? 0) - v.memoryBytes > (best.share ?? 0) - best.memoryBytes)
      best = v
  }
  return best
}
