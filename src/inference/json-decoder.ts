import { Worker } from 'node:worker_threads'
import { BerthError } from '../errors/berth-error.js'
import { ERROR_CODES, type ErrorCode } from '../errors/error-codes.js'
import { decodeInferHeader, type InferRequest, parseInferBody } from './oip-codec.js'

/**
 * A body, decoded: an Open Inference Protocol request, or a task body's `input` (`undefined`
 * unless it is an array of strings: the task refuses anything else).
 */
export type Decoded =
  | { readonly request: InferRequest }
  | { readonly task: readonly string[] | undefined }

/** What a decode worker is sent. */
export interface DecodeJob {
  readonly id: number
  readonly body: Uint8Array
  readonly headerLength: number | undefined
}

/** What a decode worker answers. */
export type DecodeResult =
  | { readonly id: number; readonly request: InferRequest }
  | { readonly id: number; readonly task: readonly string[] | undefined }
  | {
      readonly id: number
      readonly error: {
        readonly code: string
        readonly message: string
        readonly details?: Readonly<Record<string, unknown>> | undefined
      }
    }

export interface JsonDecoderOptions {
  /** Bodies whose JSON is at most this many bytes are decoded at once, on the calling thread. */
  readonly inlineBytes: number
  /** Worker threads for the larger ones, started when first needed. */
  readonly threads: number
}

interface Pending {
  readonly job: DecodeJob
  readonly transfer: ArrayBuffer[]
  readonly resolve: (decoded: Decoded) => void
  readonly reject: (err: unknown) => void
}

interface Thread {
  readonly worker: Worker
  current: Pending | undefined
}

const WORKER = new URL('./decode-worker.js', import.meta.url)

/**
 * Decodes inference request bodies. `JSON.parse` of megabytes holds the event loop for seconds
 * (a 64 MB body: 2 s here), and with it every other request and the health check: bodies past
 * `inlineBytes` of JSON are decoded on worker threads, one at a time each, in arrival order. The
 * body is handed over (its memory moves to the thread), and the decoded tensors come back the
 * same way. Throws what `parseInferBody` and `decodeInferHeader` throw.
 */
export class JsonDecoder {
  readonly #options: JsonDecoderOptions
  readonly #threads: Thread[] = []
  readonly #queue: Pending[] = []
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #closed = false

  constructor(options: JsonDecoderOptions) {
    this.#options = options
  }

  decode(body: Buffer, headerLength: number | undefined): Promise<Decoded> {
    if ((headerLength ?? body.length) <= this.#options.inlineBytes || this.#closed) {
      return Promise.resolve().then(() => decodeBody(body, headerLength))
    }
    // A Buffer that is the whole of its memory moves to the thread; a view into shared memory
    // (Node's pool for small buffers) is copied.
    const whole = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength
    const data = whole ? body : Uint8Array.prototype.slice.call(body)
    const job: DecodeJob = { id: this.#nextId++, body: data, headerLength }
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, transfer: [data.buffer as ArrayBuffer], resolve, reject })
      this.#pump()
    })
  }

  /** Ends the worker threads; bodies still queued are decoded on the calling thread. */
  async close(): Promise<void> {
    this.#closed = true
    for (const pending of this.#queue.splice(0)) {
      const { body, headerLength } = pending.job
      Promise.resolve()
        .then(() =>
          decodeBody(Buffer.from(body.buffer, body.byteOffset, body.length), headerLength),
        )
        .then(pending.resolve, pending.reject)
    }
    await Promise.all(this.#threads.map((t) => t.worker.terminate()))
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const thread = this.#idleThread()
      if (thread === undefined) return
      const pending = this.#queue.shift() as Pending
      thread.current = pending
      this.#pending.set(pending.job.id, pending)
      thread.worker.postMessage(pending.job, pending.transfer)
    }
  }

  #idleThread(): Thread | undefined {
    const idle = this.#threads.find((t) => t.current === undefined)
    if (idle !== undefined || this.#threads.length >= this.#options.threads) return idle
    const worker = new Worker(WORKER)
    // The server's lifetime is not the threads': an idle one keeps nothing alive.
    worker.unref()
    const thread: Thread = { worker, current: undefined }
    worker.on('message', (result: DecodeResult) => {
      const pending = this.#pending.get(result.id)
      this.#pending.delete(result.id)
      thread.current = undefined
      if (pending !== undefined) settle(pending, result)
      this.#pump()
    })
    // A thread that died (out of memory, say) fails the body it held; the next body starts a
    // new thread.
    const died = (err: unknown) => {
      const index = this.#threads.indexOf(thread)
      if (index >= 0) this.#threads.splice(index, 1)
      const current = thread.current
      thread.current = undefined
      if (current !== undefined) {
        this.#pending.delete(current.job.id)
        current.reject(err instanceof Error ? err : new Error(`decode worker exited: ${err}`))
      }
      if (!this.#closed) this.#pump()
    }
    worker.on('error', died)
    worker.on('exit', (code) => died(code))
    this.#threads.push(thread)
    return thread
  }
}

/**
 * Decodes a body where it is called: an Open Inference Protocol request (JSON, or with the
 * binary extension when `headerLength` is given), or a task body (`{"input": [...]}`).
 */
export function decodeBody(body: Buffer, headerLength: number | undefined): Decoded {
  const { header, binary } = parseInferBody(body, headerLength)
  if (headerLength === undefined && 'input' in header && !('inputs' in header)) {
    // Only texts travel back from a thread: anything else, however deeply nested, is refused.
    const input = header.input
    const texts = Array.isArray(input) && input.every((t) => typeof t === 'string')
    return { task: texts ? (input as string[]) : undefined }
  }
  return { request: decodeInferHeader(header, binary) }
}

function settle(pending: Pending, result: DecodeResult): void {
  if ('request' in result) pending.resolve({ request: result.request })
  else if ('task' in result) pending.resolve({ task: result.task })
  else {
    const { code, message, details } = result.error
    // The thread runs berth's own codec: its codes are berth's; anything else is a fault.
    if (!Object.hasOwn(ERROR_CODES, code) || code === 'internal_error') {
      pending.reject(new Error(`decode worker: ${message}`))
      return
    }
    pending.reject(
      new BerthError(code as ErrorCode, message, details === undefined ? {} : { details }),
    )
  }
}
