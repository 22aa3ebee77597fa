import { Worker } from 'node:worker_threads'
import { BerthError } from '../errors/berth-error.js'
import { ERROR_CODES, type ErrorCode } from '../errors/error-codes.js'
import type { WireTensor } from '../tensors/tensor.js'
import {
  decodeInferHeader,
  type EncodedResponse,
  encodeInferResponse,
  type InferRequest,
  parseInferBody,
} from './oip-codec.js'

/**
 * A body, decoded: an Open Inference Protocol request, or a task body's `input` (`undefined`
 * unless it is an array of strings: the task refuses anything else).
 */
export type Decoded =
  | { readonly request: InferRequest }
  | { readonly task: readonly string[] | undefined }

/** Who an answer is for: what `encodeInferResponse` puts beside the outputs. */
export interface AnswerMeta {
  readonly modelName: string
  readonly modelVersion: string
  readonly id: string | undefined
}

/** What a codec thread is sent: a body to decode, or outputs to encode. */
export type CodecJob =
  | {
      readonly id: number
      readonly decode: { readonly body: Uint8Array; readonly headerLength: number | undefined }
    }
  | {
      readonly id: number
      readonly encode: {
        readonly meta: AnswerMeta
        readonly outputs: readonly WireTensor[]
        readonly binaryOutputs: ReadonlySet<string> | true
      }
    }

/** What a codec thread answers. */
export type CodecResult =
  | { readonly id: number; readonly decoded: Decoded }
  | {
      readonly id: number
      readonly encoded: Omit<EncodedResponse, 'body'> & { readonly body: Uint8Array }
    }
  | {
      readonly id: number
      readonly error: {
        readonly code: string
        readonly message: string
        readonly details?: Readonly<Record<string, unknown>> | undefined
      }
    }

export interface JsonCodecOptions {
  /**
   * Bodies whose JSON is at most this many bytes, and answers with at most this many bytes of
   * tensors to write as JSON, are handled at once on the calling thread.
   */
  readonly inlineBytes: number
  /** Worker threads for the larger ones, started when first needed. */
  readonly threads: number
  /**
   * A thread idle this long ends: the memory its heap grew to for a large body goes back to the
   * system (an idle heap keeps it). The next large body starts a new one.
   */
  readonly idleMs: number
}

interface Pending {
  readonly job: CodecJob
  readonly transfer: ArrayBuffer[]
  readonly resolve: (result: CodecResult) => void
  readonly reject: (err: unknown) => void
}

interface Thread {
  readonly worker: Worker
  current: Pending | undefined
  idle: NodeJS.Timeout | undefined
}

const WORKER = new URL('./codec-worker.js', import.meta.url)

/**
 * Turns inference bodies into requests and outputs into answers, off the event loop when they
 * are large. `JSON.parse` of megabytes holds the event loop for seconds (a 64 MB body: 2 s
 * here), and writing 1.4 million floats as JSON for one second, and with it every other request
 * and the health check: those past `inlineBytes` go to worker threads, one at a time each, in
 * arrival order. A body is handed over (its memory moves to the thread) and the decoded tensors
 * come back the same way; outputs are copied over (a batch's outputs share memory), their answer
 * comes back moved. Throws what `parseInferBody`, `decodeInferHeader` and `encodeInferResponse`
 * throw.
 */
export class JsonCodec {
  readonly #options: JsonCodecOptions
  readonly #threads: Thread[] = []
  readonly #queue: Pending[] = []
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #closed = false

  constructor(options: JsonCodecOptions) {
    this.#options = options
  }

  /** Worker threads alive now. */
  get threads(): number {
    return this.#threads.length
  }

  async decode(body: Buffer, headerLength: number | undefined): Promise<Decoded> {
    if ((headerLength ?? body.length) <= this.#options.inlineBytes || this.#closed) {
      return decodeBody(body, headerLength)
    }
    // A Buffer that is the whole of its memory moves to the thread; a view into shared memory
    // (Node's pool for small buffers) is copied.
    const data = whole(body) ? body : Uint8Array.prototype.slice.call(body)
    const result = await this.#run({ id: this.#nextId++, decode: { body: data, headerLength } }, [
      data.buffer as ArrayBuffer,
    ])
    if (!('decoded' in result)) throw new Error('codec thread: not a decoded body')
    return result.decoded
  }

  async encode(
    meta: AnswerMeta,
    outputs: readonly WireTensor[],
    binaryOutputs: ReadonlySet<string> | true,
  ): Promise<EncodedResponse> {
    const asJson = outputs
      .filter((t) => binaryOutputs !== true && !binaryOutputs.has(t.name))
      .reduce((sum, t) => sum + t.data.byteLength, 0)
    if (asJson <= this.#options.inlineBytes || this.#closed) {
      return encodeInferResponse(meta, outputs, binaryOutputs)
    }
    const copies = outputs.map((t) => ({ ...t, data: Uint8Array.prototype.slice.call(t.data) }))
    const result = await this.#run(
      { id: this.#nextId++, encode: { meta, outputs: copies, binaryOutputs } },
      copies.map((t) => t.data.buffer as ArrayBuffer),
    )
    if (!('encoded' in result)) throw new Error('codec thread: not an encoded answer')
    const { body } = result.encoded
    return {
      ...result.encoded,
      body: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
    }
  }

  /** Ends the worker threads; work still queued is done on the calling thread. */
  async close(): Promise<void> {
    this.#closed = true
    for (const pending of this.#queue.splice(0)) {
      Promise.resolve()
        .then(() => runJob(pending.job))
        .then(pending.resolve, pending.reject)
    }
    await Promise.all(this.#threads.map((t) => t.worker.terminate()))
  }

  async #run(job: CodecJob, transfer: ArrayBuffer[]): Promise<CodecResult> {
    const result = await new Promise<CodecResult>((resolve, reject) => {
      this.#queue.push({ job, transfer, resolve, reject })
      this.#pump()
    })
    if (!('error' in result)) return result
    const { code, message, details } = result.error
    // The thread runs berth's own codec: its codes are berth's; anything else is a fault.
    if (!Object.hasOwn(ERROR_CODES, code) || code === 'internal_error') {
      throw new Error(`codec thread: ${message}`)
    }
    throw new BerthError(code as ErrorCode, message, details === undefined ? {} : { details })
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const thread = this.#idleThread()
      if (thread === undefined) return
      const pending = this.#queue.shift() as Pending
      clearTimeout(thread.idle)
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
    const thread: Thread = { worker, current: undefined, idle: undefined }
    worker.on('message', (result: CodecResult) => {
      const pending = this.#pending.get(result.id)
      this.#pending.delete(result.id)
      thread.current = undefined
      pending?.resolve(result)
      this.#pump()
      if (thread.current === undefined) {
        thread.idle = setTimeout(() => {
          this.#forget(thread)
          void worker.terminate()
        }, this.#options.idleMs)
        thread.idle.unref()
      }
    })
    // A thread that died (out of memory, say) fails the work it held; the next work starts a
    // new thread.
    const died = (err: unknown) => {
      this.#forget(thread)
      const current = thread.current
      thread.current = undefined
      if (current !== undefined) {
        this.#pending.delete(current.job.id)
        current.reject(err instanceof Error ? err : new Error(`codec thread exited: ${err}`))
      }
      if (!this.#closed) this.#pump()
    }
    worker.on('error', died)
    worker.on('exit', (code) => died(code))
    this.#threads.push(thread)
    return thread
  }

  #forget(thread: Thread): void {
    clearTimeout(thread.idle)
    const index = this.#threads.indexOf(thread)
    if (index >= 0) this.#threads.splice(index, 1)
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

/** Does one job where it is called (a codec thread, or this one once closed). */
export function runJob(job: CodecJob): CodecResult {
  if ('decode' in job) {
    const { body, headerLength } = job.decode
    const buffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
    return { id: job.id, decoded: decodeBody(buffer, headerLength) }
  }
  const { meta, outputs, binaryOutputs } = job.encode
  return { id: job.id, encoded: encodeInferResponse(meta, outputs, binaryOutputs) }
}

/** The memory a result can hand over without copying: its tensors', or its answer's. */
export function transferOf(result: CodecResult): ArrayBuffer[] {
  if ('decoded' in result && 'request' in result.decoded) {
    return [...new Set(result.decoded.request.inputs.map((t) => t.data.buffer as ArrayBuffer))]
  }
  if ('encoded' in result && whole(result.encoded.body)) {
    return [result.encoded.body.buffer as ArrayBuffer]
  }
  return []
}

function whole(bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
}
