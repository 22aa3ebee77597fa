import { type Context, context, type Span, trace } from '@opentelemetry/api'
import { BerthError } from '../errors/berth-error.js'
import {
  failSpan,
  linksOf,
  requestIdsOf,
  tracer,
  tracingOn,
  withRequestIds,
} from '../observability/tracing.js'
import type { WireTensor } from '../tensors/tensor.js'

/** What the batcher runs a (combined) request on: one runner. */
export interface BatchTarget {
  infer(
    inputs: readonly WireTensor[],
    outputs: readonly string[] | null,
    timeoutMs: number,
  ): Promise<WireTensor[]>
  /**
   * A runner that failed takes nothing more: requests wait for the runners to change (its
   * replacement) rather than fail with its end. Unset: it takes requests.
   */
  readonly failed?: boolean
}

/** The runners of one deployment (its replicas), which come and go. */
export interface BatchTargets {
  /** The runners that take requests now. */
  readonly targets: readonly BatchTarget[]
  /**
   * With no target: the error queued requests fail with when none is coming (the deployment
   * ended); `undefined` while one may come back (a restart), so they wait up to their deadline.
   */
  readonly unavailable: Error | undefined
  /** Calls `listener` on every change; returns the unsubscribe. */
  subscribe(listener: () => void): () => void
}

export interface BatcherOptions {
  /**
   * Most rows (first-dimension entries) run together; 1 turns batching off. Only models whose
   * every input and output has a dynamic first dimension are batched.
   */
  readonly maxBatchSize: number
  /**
   * Most bytes of tensors (what each request says it brings) run together: requests join a
   * batch only while their sum stays within it. Unset: no bound.
   */
  readonly maxBatchBytes?: number
  /**
   * How long a batchable request that finds the runner free may wait for others to join it
   * (Triton's `max_queue_delay_microseconds`); 0: it runs at once.
   */
  readonly maxQueueDelayUs?: number
  /** Calls on one runner at once: two keep it busy while the next batch is assembled. */
  readonly maxInFlight: number
  /**
   * Most requests waiting (running ones not counted), as Triton's `max_queue_size`; one more
   * is refused at once with `queue_full`. Unset: no bound.
   */
  readonly maxQueueSize?: number
  /**
   * Told by how much the number of requests waiting for a runner (running ones not counted)
   * changed, whenever it does: several batchers of one model add to one gauge.
   */
  readonly onQueueChange?: (delta: number) => void
  /** Called once per runner call with the number of requests it combined. */
  readonly onBatch?: (requests: number) => void
  /**
   * Called once per runner call that answered: its rows (1 for a request that is not batched)
   * and how long the call took.
   */
  readonly onExecuted?: (rows: number, ms: number) => void
}

interface Item {
  readonly inputs: readonly WireTensor[]
  readonly outputs: readonly string[] | null
  readonly rows: number
  /** Equal for requests that can run together (`batchKey`); unset for one that is not batched. */
  readonly key?: string
  readonly bytes: number
  readonly deadline: number
  readonly resolve: (outputs: WireTensor[]) => void
  readonly reject: (err: unknown) => void
  readonly queued: number
  /** While tracing: the request's trace context, and its wait in the queue as a span of it. */
  readonly traced?: { readonly context: Context; readonly waiting: Span }
  started?: (waitedMs: number) => void
  timer?: NodeJS.Timeout
}

/**
 * Dynamic batching in front of a deployment's runners, as Triton does: one queue; while every
 * runner is busy, requests wait in it; when one frees up, the queued requests whose inputs
 * agree on everything but a dynamic first dimension (names, order, datatypes, other dims,
 * outputs asked for) are concatenated along it, run once on the runner with the fewest calls
 * outstanding, and the outputs split back by rows. A request alone runs as it came, and nothing
 * waits for company (no added delay at low load); a batch holds at most `maxBatchSize` rows and
 * `maxBatchBytes` bytes. A request still queued at its deadline fails
 * with `inference_timeout`; one that finds the queue full fails at once with `queue_full`.
 */
export class Batcher {
  readonly #pool: BatchTargets
  readonly #options: BatcherOptions
  readonly #queue: Item[] = []
  /** Calls outstanding per runner. */
  readonly #running = new Map<BatchTarget, number>()
  #delayTimer: NodeJS.Timeout | undefined
  /** Subscribed to the pool while requests wait, so a runner coming or going moves them on. */
  #unsubscribe: (() => void) | undefined
  /** The queue length as `onQueueChange` has told it so far. */
  #toldLength = 0

  constructor(pool: BatchTargets, options: BatcherOptions) {
    this.#pool = pool
    this.#options = options
  }

  /** Requests queued or running. */
  get outstanding(): number {
    let running = 0
    for (const n of this.#running.values()) running += n
    return this.#queue.length + running
  }

  /**
   * Runs one request; `canBatch` says whether the model allows joining it with others (every
   * input and output has a dynamic first dimension); `bytes` is what it brings into the runner
   * (its inputs' bytes unless said); `onStart` learns how long it waited in the queue. Rejects with what the runner answered for its batch, `inference_timeout`, or
   * `queue_full` when `maxQueueSize` requests are already waiting.
   */
  run(
    inputs: readonly WireTensor[],
    outputs: readonly string[] | null,
    deadline: number,
    options: {
      readonly canBatch: boolean
      readonly bytes?: number
      readonly onStart?: (waitedMs: number) => void
    },
  ): Promise<WireTensor[]> {
    const onStart = options.onStart
    const maxQueueSize = this.#options.maxQueueSize
    // Checked before queueing: a request that finds a runner free leaves the queue at once.
    if (maxQueueSize !== undefined && this.#queue.length >= maxQueueSize) {
      return Promise.reject(
        new BerthError(
          'queue_full',
          `the model has ${maxQueueSize} requests waiting already; retry later`,
          { details: { max_queue_size: maxQueueSize } },
        ),
      )
    }
    return new Promise((resolve, reject) => {
      const rows = options.canBatch && batchable(inputs) ? (inputs[0]?.shape[0] as number) : 0
      const item: Item = {
        inputs,
        outputs,
        rows,
        ...(rows > 0 ? { key: batchKey(inputs, outputs) } : {}),
        bytes: options.bytes ?? inputs.reduce((sum, t) => sum + t.data.byteLength, 0),
        deadline,
        resolve,
        reject,
        queued: performance.now(),
        ...(tracingOn()
          ? {
              traced: { context: context.active(), waiting: tracer().startSpan('inference.queue') },
            }
          : {}),
        ...(onStart === undefined ? {} : { started: onStart }),
      }
      item.timer = setTimeout(
        () => {
          const index = this.#queue.indexOf(item)
          if (index < 0) return
          this.#queue.splice(index, 1)
          this.#tellQueue()
          dequeued(item)
          reject(new BerthError('inference_timeout', 'the request waited too long for its runner'))
        },
        Math.max(0, deadline - performance.now()),
      )
      this.#queue.push(item)
      this.#pump()
    })
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const target = this.#leastBusy()
      if (target === undefined) {
        const error = this.#pool.targets.length === 0 ? this.#pool.unavailable : undefined
        if (error !== undefined) this.#failQueued(error)
        break
      }
      if (this.#shouldWait()) break
      // A runner still running a batch gets another only once it is full: sent at once, a small
      // batch would wait in the runner's pipe while requests that could have joined it arrive.
      if (this.#running.has(target) && !this.#headBatchFull()) break
      const batch = this.#take()
      this.#running.set(target, (this.#running.get(target) ?? 0) + 1)
      void this.#execute(target, batch).finally(() => {
        const left = (this.#running.get(target) ?? 1) - 1
        if (left === 0) this.#running.delete(target)
        else this.#running.set(target, left)
        this.#pump()
      })
    }
    if (this.#queue.length > 0) this.#unsubscribe ??= this.#pool.subscribe(() => this.#pump())
    else {
      this.#unsubscribe?.()
      this.#unsubscribe = undefined
    }
    this.#tellQueue()
  }

  /** Tells `onQueueChange` how the queue's length moved, if it did (a request run at once: not). */
  #tellQueue(): void {
    const length = this.#queue.length
    if (length === this.#toldLength) return
    this.#options.onQueueChange?.(length - this.#toldLength)
    this.#toldLength = length
  }

  /** The runner with the fewest calls outstanding, if one has room. */
  #leastBusy(): BatchTarget | undefined {
    let best: BatchTarget | undefined
    let fewest = this.#options.maxInFlight
    for (const target of this.#pool.targets) {
      if (target.failed === true) continue
      const running = this.#running.get(target) ?? 0
      if (running < fewest) {
        best = target
        fewest = running
      }
    }
    return best
  }

  #failQueued(error: Error): void {
    for (const item of this.#queue.splice(0)) {
      dequeued(item)
      item.reject(error)
    }
  }

  /**
   * Whether to hold a batchable head back for company: only within its queue delay, and only
   * while the queue holds fewer rows than a full batch. Arms a timer to look again.
   */
  #shouldWait(): boolean {
    const delayMs = (this.#options.maxQueueDelayUs ?? 0) / 1000
    const head = this.#queue[0] as Item
    if (delayMs <= 0 || this.#headBatchFull()) return false
    const waitUntil = head.queued + delayMs
    if (performance.now() >= waitUntil) return false
    if (this.#delayTimer === undefined) {
      this.#delayTimer = setTimeout(() => {
        this.#delayTimer = undefined
        this.#pump()
      }, waitUntil - performance.now())
    }
    return true
  }

  /**
   * Whether the head of the queue gains nothing by waiting: it is not batched, or the requests
   * that can join it fill a batch.
   */
  #headBatchFull(): boolean {
    const head = this.#queue[0] as Item
    if (head.rows === 0 || this.#options.maxBatchSize <= 1) return true
    let rows = 0
    for (const item of this.#queue) {
      if (compatible(head, item)) rows += item.rows
      if (rows >= this.#options.maxBatchSize) return true
    }
    return false
  }

  /** The head of the queue and every later request that can join it. */
  #take(): Item[] {
    const head = this.#queue.shift() as Item
    const batch = [head]
    if (head.rows === 0 || this.#options.maxBatchSize <= 1) return batch
    let rows = head.rows
    let bytes = head.bytes
    const maxBytes = this.#options.maxBatchBytes ?? Number.POSITIVE_INFINITY
    for (let i = 0; i < this.#queue.length; ) {
      const item = this.#queue[i] as Item
      if (
        rows + item.rows <= this.#options.maxBatchSize &&
        bytes + item.bytes <= maxBytes &&
        compatible(head, item)
      ) {
        batch.push(item)
        rows += item.rows
        bytes += item.bytes
        this.#queue.splice(i, 1)
      } else i += 1
    }
    return batch
  }

  async #execute(target: BatchTarget, batch: Item[]): Promise<void> {
    const now = performance.now()
    for (const item of batch) {
      dequeued(item)
      item.started?.(now - item.queued)
    }
    this.#options.onBatch?.(batch.length)
    const [first, ...others] = batch.flatMap((b) => (b.traced ? [b.traced.context] : []))
    if (first === undefined) return this.#run(target, batch, now)
    // One runner call for the batch: a span of the first request's trace, linked to the others'.
    const span = tracer().startSpan(
      'runner.infer',
      { attributes: { 'berth.batch.requests': batch.length }, links: linksOf(others) },
      first,
    )
    // The call works for every request of the batch: the runner learns all their ids.
    const ids = requestIdsOf([first, ...others])
    await context.with(withRequestIds(trace.setSpan(first, span), ids), () =>
      this.#run(target, batch, now, span),
    )
    span.end()
  }

  /** Runs the batch on `target` and answers each request; `span`, while tracing, learns a failure. */
  async #run(target: BatchTarget, batch: Item[], now: number, span?: Span): Promise<void> {
    const head = batch[0] as Item
    const deadline = Math.min(...batch.map((b) => b.deadline))
    const timeoutMs = Math.max(1, Math.ceil(deadline - performance.now()))
    try {
      const executed = (rows: number) =>
        this.#options.onExecuted?.(Math.max(1, rows), performance.now() - now)
      if (batch.length === 1) {
        const outputs = await target.infer(head.inputs, head.outputs, timeoutMs)
        executed(head.rows)
        head.resolve(outputs)
        return
      }
      const inputs = head.inputs.map((first, i) => ({
        ...first,
        shape: [batch.reduce((n, b) => n + b.rows, 0), ...first.shape.slice(1)],
        data: concat(batch.map((b) => (b.inputs[i] as WireTensor).data)),
      }))
      const outputs = await target.infer(inputs, head.outputs, timeoutMs)
      const total = inputs[0]?.shape[0] ?? 0
      executed(total)
      if (!outputs.every((o) => o.shape.length > 0 && o.shape[0] === total)) {
        throw new BerthError(
          'inference_failed',
          'the model answered a batch with outputs whose first dimension is not the batch',
        )
      }
      let row = 0
      for (const item of batch) {
        item.resolve(outputs.map((o) => slice(o, row, item.rows, total)))
        row += item.rows
      }
    } catch (err) {
      for (const item of batch) item.reject(err)
      if (span !== undefined) failSpan(span, err)
    }
  }
}

/** A request leaves the queue (to run, or to fail): its deadline and its queue span end. */
function dequeued(item: Item): void {
  clearTimeout(item.timer)
  item.traced?.waiting.end()
}

/** Batchable: every input has a first dimension of at least one row, all the same. */
function batchable(inputs: readonly WireTensor[]): boolean {
  const rows = inputs[0]?.shape[0]
  return (
    rows !== undefined && rows > 0 && inputs.every((t) => t.shape.length > 0 && t.shape[0] === rows)
  )
}

/**
 * What requests must agree on to run as one: their inputs' names, order, datatypes and every
 * dim but the first, and the outputs asked for. Built once per request, so that the queue is
 * scanned with string comparisons (it is scanned on every arrival while the runner is busy).
 */
function batchKey(inputs: readonly WireTensor[], outputs: readonly string[] | null): string {
  return JSON.stringify([outputs, inputs.map((t) => [t.name, t.datatype, t.shape.slice(1)])])
}

function compatible(a: Item, b: Item): boolean {
  return b.key !== undefined && a.key === b.key
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)))
}

/** Rows `[from, from + rows)` of an output whose first dimension is `total`. */
function slice(tensor: WireTensor, from: number, rows: number, total: number): WireTensor {
  const rowBytes = tensor.data.byteLength / total
  return {
    ...tensor,
    shape: [rows, ...tensor.shape.slice(1)],
    data: tensor.data.subarray(from * rowBytes, (from + rows) * rowBytes),
  }
}
