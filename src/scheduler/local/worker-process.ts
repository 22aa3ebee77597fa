import { type ChildProcess, spawn } from 'node:child_process'
import type { Duplex } from 'node:stream'
import { BerthError } from '../../errors/berth-error.js'
import {
  FrameDecoder,
  type FromWorker,
  isFromWorker,
  RUNNER_PROTOCOL_VERSION,
  type ToWorker,
  writeFrame,
} from '../../runtime/worker-protocol.js'

/** What a caller may send: every message but `ping`, which the process sends itself. */
type Request =
  Exclude<ToWorker, { type: 'ping' }> extends infer M
    ? M extends ToWorker
      ? Omit<M, 'id'>
      : never
    : never

/** Liveness checks of an idle runner (Triton's stub health check, in spirit). */
export interface RunnerPing {
  /** How often a runner with nothing outstanding is pinged. */
  readonly intervalMs: number
  /** How long it has to answer before it is killed (`runner_unresponsive`). */
  readonly timeoutMs: number
}

export interface WorkerProcessOptions {
  /** The program that runs `entry`; Node itself unless said otherwise (e.g. python3). */
  readonly executable?: string
  /** The runner's entry point (a script) and its arguments. */
  readonly entry: string
  readonly args?: readonly string[]
  /** Extra Node flags for the runner, e.g. a heap limit. */
  readonly execArgv?: readonly string[]
  /** Time allowed for the `started` handshake. */
  readonly startTimeoutMs: number
  /** After SIGTERM, how long to wait before SIGKILL. */
  readonly killGraceMs: number
  readonly maxFrameBytes: number
  /** The runner's whole environment; unset: none at all (never the server's own). */
  readonly env?: Readonly<Record<string, string>>
  /** Pings the runner while it is idle, once started; unset: no liveness checks. */
  readonly ping?: RunnerPing
  /** Receives the runner's stdout and stderr lines. */
  readonly log?: (line: string) => void
}

export interface WorkerExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** The kernel killed it for passing its memory limit (a container engine says so). */
  readonly oomKilled?: boolean
}

/**
 * Where a runner runs: a child process here, or a container. The protocol client asks it to stop
 * and learns from it when the runner has ended.
 */
export interface RunnerHost {
  readonly pid: number | undefined
  /** Whether the runner has not ended yet. */
  readonly running: boolean
  /** Resolves once the runner has ended, however it ended. */
  readonly exited: Promise<WorkerExit>
  /** Asks the runner to stop (SIGTERM, `docker stop`). */
  terminate(): void
  /** Ends it at once (SIGKILL). */
  kill(): void
}

/** A runner child process of this server. */
class ProcessHost implements RunnerHost {
  readonly #child: ChildProcess
  readonly exited: Promise<WorkerExit>

  constructor(child: ChildProcess) {
    this.#child = child
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }))
    })
  }

  get pid(): number | undefined {
    return this.#child.pid
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null
  }

  terminate(): void {
    this.#child.kill('SIGTERM')
  }

  kill(): void {
    this.#child.kill('SIGKILL')
  }
}

interface Pending {
  readonly resolve: (message: FromWorker) => void
  readonly reject: (err: BerthError) => void
  readonly timer: NodeJS.Timeout
}

/**
 * One runner child process: spawn, handshake (refused unless the runner speaks
 * `RUNNER_PROTOCOL_VERSION`), requests matched to answers by id, timeouts, pings while idle, and
 * a stop that escalates from SIGTERM to SIGKILL. A crash, a hang, a missed ping or a malformed
 * message (an error code a runner may not send included) fails the pending requests with
 * `runner_*` errors and ends the process; it never throws into the caller's event loop.
 */
export class WorkerProcess {
  readonly #host: RunnerHost
  readonly #channel: Duplex
  readonly #options: WorkerProcessOptions
  readonly #pending = new Map<number, Pending>()
  /** Woken whenever the last pending request is answered or failed. */
  readonly #idleWaiters = new Set<() => void>()
  #nextId = 1
  #failure: BerthError | undefined
  #stopping: Promise<WorkerExit> | undefined
  #pinging: NodeJS.Timeout | undefined
  /** The ping awaiting its pong, and the timer that kills the runner if none comes. */
  #awaitedPong: { readonly id: number; readonly timer: NodeJS.Timeout } | undefined
  /** Resolves when the process has exited, however it ended. */
  readonly exited: Promise<WorkerExit>

  private constructor(host: RunnerHost, channel: Duplex, options: WorkerProcessOptions) {
    this.#host = host
    this.#channel = channel
    this.#options = options
    this.exited = host.exited.then((exit) => {
      this.#stopPinging()
      this.#fail(
        this.#failure ??
          new BerthError('runner_crashed', 'the runner process exited', {
            details: { exit_code: exit.code, signal: exit.signal },
          }),
      )
      return exit
    })
  }

  /** Spawns the runner and waits for its `started` handshake (the channel: its fd 3). */
  static start(options: WorkerProcessOptions): Promise<WorkerProcess> {
    const child = spawn(
      options.executable ?? process.execPath,
      [...(options.execArgv ?? []), options.entry, ...(options.args ?? [])],
      {
        stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
        // A runner loads untrusted models: it sees only what it is given, not the server's secrets.
        env: { ...options.env },
      },
    )
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8')
      stream?.on('data', (text: string) => {
        for (const line of text.split('\n')) if (line !== '') options.log?.(line)
      })
    }
    return WorkerProcess.#begin(
      new WorkerProcess(new ProcessHost(child), child.stdio[3] as Duplex, options),
    )
  }

  /**
   * Speaks the protocol over `channel` (a socket already past its `hello`) to a runner that
   * `host` runs, and waits for its `started` handshake. The channel closing ends the runner: no
   * answer can come any more.
   */
  static attach(
    host: RunnerHost,
    channel: Duplex,
    options: Omit<WorkerProcessOptions, 'entry'>,
  ): Promise<WorkerProcess> {
    const worker = new WorkerProcess(host, channel, { ...options, entry: '' })
    channel.once('close', () => {
      worker.kill(new BerthError('runner_crashed', 'the connection to the runner closed'))
    })
    return WorkerProcess.#begin(worker)
  }

  static async #begin(worker: WorkerProcess): Promise<WorkerProcess> {
    const options = worker.#options
    const started = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new BerthError('runner_start_timeout', 'the runner did not start in time'))
      }, options.startTimeoutMs)
      worker.#onStarted = () => {
        clearTimeout(timer)
        resolve()
      }
      worker.exited.then(() => {
        clearTimeout(timer)
        reject(
          worker.#failure ?? new BerthError('runner_crashed', 'the runner exited while starting'),
        )
      })
    })
    worker.#listen()
    try {
      await started
    } catch (err) {
      await worker.stop()
      throw err
    }
    if (options.ping !== undefined) worker.#startPinging(options.ping)
    return worker
  }

  #onStarted: (() => void) | undefined

  get pid(): number | undefined {
    return this.#host.pid
  }

  /** Why the runner stopped serving (the first failure), or `undefined` while it is healthy. */
  get failure(): BerthError | undefined {
    return this.#failure
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.#pending.size
  }

  /** Resolves once no request is pending, or after `timeoutMs`, whichever comes first. */
  idle(timeoutMs: number): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#idleWaiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      this.#idleWaiters.add(done)
    })
  }

  /** Ends the runner at once (SIGKILL), failing every pending request with `reason`. */
  kill(reason: BerthError): void {
    this.#fail(reason)
    if (this.#host.running) this.#host.kill()
  }

  /**
   * Sends a request and resolves the runner's answer. A `failed` answer rejects with the
   * runner's error code; no answer within `timeoutMs` stops the runner (`runner_timeout`).
   */
  call(request: Request, timeoutMs: number): Promise<FromWorker> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new BerthError(
          'runner_timeout',
          `the runner did not answer within ${timeoutMs} ms`,
          {
            details: { timeout_ms: timeoutMs },
          },
        )
        this.#fail(err)
        void this.stop()
      }, timeoutMs)
      this.#pending.set(id, { resolve, reject, timer })
      writeFrame(this.#channel, { ...request, id } as ToWorker)
    })
  }

  /** Stops the runner: SIGTERM, then SIGKILL after the grace period. Idempotent. */
  stop(): Promise<WorkerExit> {
    this.#stopping ??= (async () => {
      // A runner asked to stop owes no pong: ending it as unresponsive would misname its end.
      this.#stopPinging()
      if (this.#host.running) {
        this.#channel.end()
        this.#host.terminate()
        const timer = setTimeout(() => this.#host.kill(), this.#options.killGraceMs)
        const exit = await this.exited
        clearTimeout(timer)
        return exit
      }
      return this.exited
    })()
    return this.#stopping
  }

  #listen(): void {
    const decoder = new FrameDecoder(isFromWorker, this.#options.maxFrameBytes)
    this.#channel.on('data', (chunk: Buffer) => {
      let messages: FromWorker[]
      try {
        messages = decoder.push(chunk)
      } catch (err) {
        this.kill(
          new BerthError('runner_protocol_error', 'the runner sent a malformed message', {
            cause: err,
          }),
        )
        return
      }
      for (const message of messages) this.#receive(message)
    })
    this.#channel.on('error', () => undefined)
    // A socket `connectRunner` checked is paused, the runner's `started` waiting in it.
    this.#channel.resume()
  }

  #receive(message: FromWorker): void {
    if (message.type === 'started') {
      if (message.protocol !== RUNNER_PROTOCOL_VERSION) {
        this.kill(
          new BerthError(
            'runner_protocol_error',
            `the runner speaks protocol version ${message.protocol}; this server speaks ${RUNNER_PROTOCOL_VERSION}`,
            {
              details: {
                runner_protocol: message.protocol,
                expected_protocol: RUNNER_PROTOCOL_VERSION,
              },
            },
          ),
        )
        return
      }
      this.#onStarted?.()
      return
    }
    if (message.type === 'pong') {
      if (message.id === this.#awaitedPong?.id) {
        clearTimeout(this.#awaitedPong.timer)
        this.#awaitedPong = undefined
      }
      return
    }
    const pending = this.#pending.get(message.id)
    if (pending === undefined) return
    this.#pending.delete(message.id)
    clearTimeout(pending.timer)
    this.#wakeIfIdle()
    // The code is one a runner may send: `isFromWorker` refused the frame otherwise.
    if (message.type === 'failed')
      pending.reject(new BerthError(message.error.code, message.error.message))
    else pending.resolve(message)
  }

  #stopPinging(): void {
    clearInterval(this.#pinging)
    clearTimeout(this.#awaitedPong?.timer)
  }

  #startPinging(ping: RunnerPing): void {
    if (this.#failure !== undefined) return // it ended already: its exit cleared no timer
    this.#pinging = setInterval(() => this.#ping(ping.timeoutMs), ping.intervalMs)
    this.#pinging.unref()
  }

  /**
   * Pings the runner if it is idle. A busy one is not: its calls' own timeouts watch it, and a
   * runtime computing synchronously could not answer. A runner answers a ping before reading
   * anything sent after it, so a request sent meanwhile does not delay the pong.
   */
  #ping(timeoutMs: number): void {
    const busy = this.#pending.size > 0 || this.#awaitedPong !== undefined
    if (busy || this.#failure !== undefined || this.#stopping !== undefined) return
    const id = this.#nextId++
    const timer = setTimeout(() => {
      this.kill(
        new BerthError(
          'runner_unresponsive',
          `the runner did not answer a ping within ${timeoutMs} ms`,
          { details: { ping_timeout_ms: timeoutMs } },
        ),
      )
    }, timeoutMs)
    timer.unref()
    this.#awaitedPong = { id, timer }
    writeFrame(this.#channel, { type: 'ping', id })
  }

  /** Fails every pending request (and every later one) with `err`. */
  #fail(err: BerthError): void {
    this.#failure ??= err
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer)
      pending.reject(this.#failure)
      this.#pending.delete(id)
    }
    this.#wakeIfIdle()
  }

  #wakeIfIdle(): void {
    if (this.#pending.size === 0) for (const wake of [...this.#idleWaiters]) wake()
  }
}
