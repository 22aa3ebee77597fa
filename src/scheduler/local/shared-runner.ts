import type { LoadTarget } from '../../domain/serving-plan.js'
import { BerthError } from '../../errors/berth-error.js'
import { withServerPathsHidden } from '../../errors/hide-server-paths.js'
import type { Signature, WireTensor } from '../../tensors/tensor.js'
import type { Runner, RunnerEnd } from '../scheduler.js'

/** What a model's view needs of the process it shares (`SharedRunnerHost`). */
export interface SlotHost {
  readonly pid: number | undefined
  /** Why the process stopped serving, or `undefined` while it is healthy. */
  readonly failure: BerthError | undefined
  load(view: SharedRunner, target: LoadTarget, timeoutMs: number): Promise<Signature>
  infer(
    view: SharedRunner,
    inputs: readonly WireTensor[],
    outputs: readonly string[] | null,
    timeoutMs: number,
  ): Promise<WireTensor[]>
  /** Frees the view's slot (ending the process when it was the last), then ends the view. */
  release(view: SharedRunner, end: RunnerEnd): Promise<void>
  /** The view's part of the process's resident memory. */
  residentOf(view: SharedRunner): number | undefined
}

export interface SharedRunnerOptions {
  readonly slot: number
  readonly label: string
  /** The model's `memory_gb`: its part of the process's limit, and its own share's bound. */
  readonly memoryBytes: number
  /** The size of its files: what it is expected to hold until its load is measured. */
  readonly modelBytes: number
  readonly intraOpThreads: number
}

/**
 * One model in a runner process shared with other models of its organization: the `Runner` the
 * deployment sees. Its calls go to its slot; `stop` drains its own requests and frees its slot
 * only; `ended` resolves when the slot is gone (`stopped`, or `moved` when the model outgrew its
 * share), or when the process dies, for every model it held.
 */
export class SharedRunner implements Runner {
  readonly ended: Promise<RunnerEnd>
  readonly slot: number
  readonly label: string
  readonly memoryBytes: number
  readonly modelBytes: number
  readonly intraOpThreads: number
  /** What loading the model added to the process's resident set, and its growth since. */
  share: number | undefined
  readonly #host: SlotHost
  #resolveEnded: (end: RunnerEnd) => void = () => undefined
  #endedWith: RunnerEnd | undefined
  /** Why this model takes no more requests (moved out, or the process failed). */
  #failure: BerthError | undefined
  #stopRequested = false
  #stopping: Promise<void> | undefined
  #root = ''
  #inFlight = 0
  readonly #idleWaiters = new Set<() => void>()

  constructor(host: SlotHost, options: SharedRunnerOptions) {
    this.#host = host
    this.slot = options.slot
    this.label = options.label
    this.memoryBytes = options.memoryBytes
    this.modelBytes = options.modelBytes
    this.intraOpThreads = options.intraOpThreads
    this.ended = new Promise((resolve) => {
      this.#resolveEnded = resolve
    })
  }

  /** The process id and the model's slot in it: stable for the model's life there. */
  get id(): string {
    return `${this.#host.pid}/${this.slot}`
  }

  /** The shared process's id. */
  get pid(): number | undefined {
    return this.#host.pid
  }

  get inFlight(): number {
    return this.#inFlight
  }

  get failed(): boolean {
    return this.#failure !== undefined || this.#host.failure !== undefined
  }

  /** Whether the model is being moved out of the process (it takes no more requests). */
  get moving(): boolean {
    return this.#failure !== undefined && this.#endedWith === undefined && !this.#stopRequested
  }

  get stopRequested(): boolean {
    return this.#stopRequested
  }

  residentBytes(): number | undefined {
    return this.#host.residentOf(this)
  }

  async load(target: LoadTarget, timeoutMs: number): Promise<Signature> {
    this.#root = target.root
    return this.#counted(() => this.#host.load(this, target, timeoutMs))
  }

  infer(
    inputs: readonly WireTensor[],
    outputs: readonly string[] | null,
    timeoutMs: number,
  ): Promise<WireTensor[]> {
    return this.#counted(() => this.#host.infer(this, inputs, outputs, timeoutMs))
  }

  stop(drainMs: number): Promise<void> {
    this.#stopping ??= (async () => {
      this.#stopRequested = true
      await this.#idle(drainMs)
      await this.#host.release(this, { cause: 'stopped', message: 'the runner was stopped' })
    })()
    return this.#stopping
  }

  /**
   * Moves the model out: it takes no more requests; once those it has run are answered its slot
   * is freed and it ends `moved` (the scheduler starts it in a process of its own next time).
   */
  moveOut(message: string, details: Record<string, unknown>): void {
    if (this.#failure !== undefined || this.#stopRequested) return
    this.#failure = new BerthError(
      'runner_crashed',
      'the model was moved to a runner process of its own: it went past its memory_gb in the one it shared; retry',
      { details },
    )
    void (async () => {
      // Each call is bounded by its own timeout: past it the process itself is ended.
      await this.#idle(Number.POSITIVE_INFINITY)
      await this.#host.release(this, { cause: 'moved', message })
    })()
  }

  /** Ends the view (the first end wins): called by the host once the slot or process is gone. */
  end(end: RunnerEnd): void {
    if (this.#endedWith !== undefined) return
    this.#endedWith = end
    this.#resolveEnded(end)
  }

  async #counted<T>(call: () => Promise<T>): Promise<T> {
    const failure = this.#failure ?? this.#host.failure
    if (failure !== undefined) throw failure
    this.#inFlight += 1
    try {
      return await call()
    } catch (err) {
      throw withServerPathsHidden(err, this.#root)
    } finally {
      this.#inFlight -= 1
      if (this.#inFlight === 0) for (const wake of [...this.#idleWaiters]) wake()
    }
  }

  /** Resolves once none of this model's calls is outstanding, or after `timeoutMs`. */
  #idle(timeoutMs: number): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#idleWaiters.delete(done)
        resolve()
      }
      const timer = Number.isFinite(timeoutMs) ? setTimeout(done, timeoutMs) : undefined
      this.#idleWaiters.add(done)
    })
  }
}
