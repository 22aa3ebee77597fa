import type { NodeCapacity } from '../../config/config.js'
import type { ResourceRequirements } from '../../domain/model.js'
import type { RunnerRuntime } from '../../domain/serving-plan.js'
import { BerthError } from '../../errors/berth-error.js'
import type {
  NodeUsage,
  Refusal,
  Reservation,
  Runner,
  RunnerSpec,
  Scheduler,
} from '../scheduler.js'
import { LocalRunner } from './local-runner.js'
import {
  ProcessLauncher,
  RUNNER_ENTRY,
  type RunnerCommand,
  type RunnerLauncher,
  type RunnerLimits,
} from './runner-launcher.js'
import { SharedRunnerHost } from './shared-runner-host.js'
import type { RunnerPing, WorkerProcess } from './worker-process.js'

export { RUNNER_ENTRY, type RunnerCommand }

export interface LocalSchedulerOptions {
  readonly node: NodeCapacity
  /** Where the pid of every live runner is recorded, to end leftovers after a crash. */
  readonly runDir: string
  readonly startTimeoutMs: number
  readonly killGraceMs: number
  readonly memoryPollMs: number
  readonly maxFrameBytes: number
  /** Liveness checks of idle runners (spares included); unset: none. */
  readonly ping?: RunnerPing | undefined
  /** A python3 with torch for the torch runtime (BERTH_TORCH_PYTHON); auto-detected when unset. */
  readonly torchPython?: string | undefined
  /** Defaults to berth's runners: `runtime/worker-main.js RUNTIME`, or python for `torch`. */
  readonly command?: (runtime: RunnerRuntime) => RunnerCommand
  /**
   * Where runners run; unset: child processes of this server (`runDir`, `torchPython` and
   * `command` say how). A container launcher runs each in a container of the node's engine.
   */
  readonly launcher?: RunnerLauncher
  /**
   * Where upload load checks run when not where deployments do: runners that fetch their models
   * (`BERTH_RUNNER_FILES=fetch`) cannot see an upload's files, so its check runs in a runner
   * process of this server. Unset: `launcher`.
   */
  readonly checkLauncher?: RunnerLauncher
  /** ONNX runner processes kept started ahead of need (0: none). */
  readonly spareRunners?: number
  /**
   * Small models of one organization share runner processes: at most `maxModels` in one, each
   * with files of at most `maxModelBytes`. Unset (or `maxModels` under 2): each model has its own.
   */
  readonly sharing?: { readonly maxModels: number; readonly maxModelBytes: number } | undefined
  /** The runners' environment (never the server's own); unset: an empty one. */
  readonly runnerEnv?: Readonly<Record<string, string>>
  readonly log?: (line: string, fields: Record<string, unknown>) => void
}

/** Capacity in use, in the units that are compared. */
interface Used {
  cpus: number
  memoryBytes: number
  gpus: number
}

/**
 * Places runners as child processes of this server, admitting them against the node's capacity
 * (CPUs times the overcommit factor, memory, GPUs). Capacity is reserved per deployment and
 * returned on release. Small models that may share are packed into runner processes of their
 * organization and runtime (the first with a free slot and room), never another organization's.
 */
export class LocalScheduler implements Scheduler {
  readonly #options: LocalSchedulerOptions
  readonly #launcher: RunnerLauncher
  readonly #used: Used = { cpus: 0, memoryBytes: 0, gpus: 0 }
  /** What the node offers now: `options.node` until `resize`. */
  #node: NodeCapacity
  readonly #resized: (() => void)[] = []
  readonly #runners = new Set<Runner>()
  readonly #held = new Set<Reservation>()
  /** Started ONNX runner processes with no model yet, taken by the next start. */
  readonly #spares: Promise<WorkerProcess | undefined>[] = []
  /** Every runner process alive, spares and checks included. */
  readonly #workers = new Set<WorkerProcess>()
  /** What each worker's output lines are logged under (a spare is relabelled when taken). */
  readonly #labels = new WeakMap<WorkerProcess, string>()
  /** Runner processes shared by several models, oldest first. */
  readonly #hosts = new Set<SharedRunnerHost>()
  /** Models moved out of a shared process for outgrowing their share: they get their own. */
  readonly #ownProcess = new Set<string>()
  /** Starts and pid-file removals in progress: `close()` waits for them. */
  readonly #pending = new Set<Promise<unknown>>()
  #closed = false

  private constructor(options: LocalSchedulerOptions) {
    this.#options = options
    this.#node = options.node
    this.#launcher =
      options.launcher ??
      new ProcessLauncher({
        runDir: options.runDir,
        torchPython: options.torchPython,
        ...(options.command === undefined ? {} : { command: options.command }),
        startTimeoutMs: options.startTimeoutMs,
        killGraceMs: options.killGraceMs,
        maxFrameBytes: options.maxFrameBytes,
        ping: options.ping,
        ...(options.runnerEnv === undefined ? {} : { runnerEnv: options.runnerEnv }),
      })
  }

  /**
   * Opens the scheduler, first ending runner processes a crashed earlier server left behind
   * (their pids were recorded under `runDir`). Resolves how many were ended with it.
   */
  static async open(options: LocalSchedulerOptions): Promise<LocalScheduler> {
    const scheduler = new LocalScheduler(options)
    const ended = await scheduler.#launcher.endLeftovers()
    if (ended > 0) options.log?.('ended runners left by an earlier server', { ended })
    scheduler.#refillSpares()
    return scheduler
  }

  reserve(
    resources: ResourceRequirements,
    replicas = 1,
    charge: ResourceRequirements = resources,
  ): Reservation | Refusal {
    const times = (r: ResourceRequirements) => ({
      numCpus: r.numCpus * replicas,
      memoryBytes: r.memoryBytes * replicas,
      numGpus: r.numGpus * replicas,
    })
    let charged: ResourceRequirements = {
      numCpus: Math.min(charge.numCpus, resources.numCpus),
      memoryBytes: Math.min(charge.memoryBytes, resources.memoryBytes),
      numGpus: Math.min(charge.numGpus, resources.numGpus),
    }
    const total = times(charged)
    const refusal = this.#refusalFor(times(resources), total, replicas)
    if (refusal !== undefined) return refusal
    const used = this.#used
    used.cpus += total.numCpus
    used.memoryBytes += total.memoryBytes
    used.gpus += total.numGpus
    let released = false
    const reservation: Reservation = {
      resources,
      get charged() {
        return charged
      },
      replicas,
      recharge: (memoryBytes) => {
        if (released) return
        const next = Math.max(0, Math.min(memoryBytes, resources.memoryBytes))
        const delta = (next - charged.memoryBytes) * replicas
        charged = { ...charged, memoryBytes: next }
        total.memoryBytes += delta
        used.memoryBytes += delta
      },
      release: () => {
        if (released) return
        released = true
        this.#held.delete(reservation)
        used.cpus -= total.numCpus
        used.memoryBytes -= total.memoryBytes
        used.gpus -= total.numGpus
      },
    }
    this.#held.add(reservation)
    return reservation
  }

  held(): readonly Reservation[] {
    return [...this.#held]
  }

  /**
   * Offers `node` from now on (the swarm's nodes changed), and tells the `onResize` listeners
   * when that is a change. Reservations held are kept: on a smaller node, new ones are refused
   * until enough are released.
   */
  resize(node: NodeCapacity): void {
    const before = this.#node
    this.#node = node
    const same = (['cpus', 'cpuOvercommit', 'memoryBytes', 'gpus'] as const).every(
      (k) => before[k] === node[k],
    )
    if (!same) for (const listener of this.#resized) listener()
  }

  onResize(listener: () => void): void {
    this.#resized.push(listener)
  }

  usage(): NodeUsage {
    const node = this.#node
    const { cpus, memoryBytes, gpus } = this.#used
    return {
      cpus: node.cpus * node.cpuOvercommit,
      memoryBytes: node.memoryBytes,
      gpus: node.gpus,
      reserved: { cpus, memoryBytes, gpus },
    }
  }

  start(reservation: Reservation, spec: RunnerSpec): Promise<Runner> {
    if (this.#closed) {
      return Promise.reject(new BerthError('server_shutting_down', 'the server is shutting down'))
    }
    return this.#track(
      this.#shares(spec) ? this.#startShared(reservation, spec) : this.#start(reservation, spec),
    )
  }

  /**
   * Whether a model shares a process: when sharing is on and the model may, for Node's runtimes
   * only (torch keeps a process of its own), files up to the size limit, and not a model moved
   * out of a shared process before (until the server restarts).
   */
  #shares(spec: RunnerSpec): boolean {
    const sharing = this.#options.sharing
    return (
      sharing !== undefined &&
      sharing.maxModels > 1 &&
      spec.mayShare === true &&
      spec.runtime !== 'torch' &&
      spec.modelBytes !== undefined &&
      spec.modelBytes <= sharing.maxModelBytes &&
      !this.#ownProcess.has(spec.label)
    )
  }

  async #startShared(reservation: Reservation, spec: RunnerSpec): Promise<Runner> {
    const bytes = spec.modelBytes ?? 0
    const host = this.#hostFor(spec, bytes)
    const runner = host.attach({
      label: spec.label,
      memoryBytes: reservation.resources.memoryBytes,
      modelBytes: bytes,
      intraOpThreads: Math.max(1, Math.floor(reservation.resources.numCpus)),
    })
    await host.ready
    this.#runners.add(runner)
    void runner.ended.then(() => this.#runners.delete(runner))
    if (this.#closed) await runner.stop(0)
    return runner
  }

  /** The first process of the model's organization and runtime with room, else a new one. */
  #hostFor(spec: RunnerSpec, bytes: number): SharedRunnerHost {
    for (const host of this.#hosts) {
      const same = host.organizationId === spec.organizationId && host.runtime === spec.runtime
      if (same && host.fits(spec.label, bytes)) return host
    }
    const sharing = this.#options.sharing ?? { maxModels: 1, maxModelBytes: 0 }
    const host = new SharedRunnerHost(
      this.startWorker(spec.runtime, `shared runner of ${spec.organizationId}`),
      {
        organizationId: spec.organizationId,
        runtime: spec.runtime,
        maxModels: sharing.maxModels,
        // Room for as many models of the largest size that shares as the process may hold.
        maxBytes: sharing.maxModels * sharing.maxModelBytes,
        memoryPollMs: this.#options.memoryPollMs,
        unloadTimeoutMs: this.#options.startTimeoutMs,
        onMoved: (label) => this.#ownProcess.add(label),
      },
    )
    this.#hosts.add(host)
    void host.ready
      .then((worker) => worker.exited)
      .catch(() => undefined)
      .then(() => this.#hosts.delete(host))
    return host
  }

  async #start(reservation: Reservation, spec: RunnerSpec): Promise<Runner> {
    const { numCpus, memoryBytes, numGpus } = reservation.resources
    const worker = await this.startWorker(spec.runtime, spec.label, {
      cpus: numCpus,
      memoryBytes,
      gpus: numGpus,
      ...(spec.nodeSelector === undefined ? {} : { nodeSelector: spec.nodeSelector }),
    })
    const runner = new LocalRunner(worker, {
      // ONNX Runtime's intra-op pool: one thread per whole CPU asked for, at least one.
      intraOpThreads: Math.max(1, Math.floor(reservation.resources.numCpus)),
      memoryLimitBytes: reservation.resources.memoryBytes,
      memoryPollMs: this.#options.memoryPollMs,
      killGraceMs: this.#options.killGraceMs,
    })
    this.#runners.add(runner)
    void runner.ended.then(() => this.#runners.delete(runner))
    if (this.#closed) await runner.stop(0)
    return runner
  }

  /**
   * A runner process with no model, outside any reservation (the upload's load check uses it
   * too): a spare when one is ready for `runtime`, else a new one. Its pid is recorded until it
   * exits; `close()` ends it.
   */
  async startWorker(
    runtime: RunnerRuntime,
    label: string,
    limits?: RunnerLimits,
  ): Promise<WorkerProcess> {
    if (this.#closed) throw new BerthError('server_shutting_down', 'the server is shutting down')
    if (runtime === 'onnx' && this.#spares.length > 0) {
      const spare = await this.#spares.shift()
      this.#refillSpares()
      if (spare !== undefined && spare.failure === undefined) {
        this.#labels.set(spare, label)
        return spare
      }
    }
    return this.#track(this.#launch(runtime, label, limits))
  }

  /**
   * A runner with no model for an upload's load check, from the check launcher (or as
   * `startWorker` does when there is none). Tracked like every runner: `close()` ends it.
   */
  startCheckWorker(): Promise<WorkerProcess> {
    const checks = this.#options.checkLauncher
    if (checks === undefined) return this.startWorker('onnx', 'upload load check')
    if (this.#closed) throw new BerthError('server_shutting_down', 'the server is shutting down')
    return this.#track(this.#launch('onnx', 'upload load check', undefined, checks))
  }

  /** Starts spare ONNX runners up to the configured count (a failed one is logged, not kept). */
  #refillSpares(): void {
    while (!this.#closed && this.#spares.length < (this.#options.spareRunners ?? 0)) {
      const spare = this.#launch('onnx', 'spare').catch((err: unknown) => {
        this.#options.log?.('a spare runner did not start', { error: String(err) })
        return undefined
      })
      this.#spares.push(this.#track(spare))
    }
  }

  async #launch(
    runtime: RunnerRuntime,
    label: string,
    limits?: RunnerLimits,
    launcher: RunnerLauncher = this.#launcher,
  ): Promise<WorkerProcess> {
    const log = this.#options.log
    let worker: WorkerProcess | undefined
    const launched = await launcher.launch(runtime, limits, (line) =>
      log?.(line, { runner: (worker && this.#labels.get(worker)) ?? label }),
    )
    worker = launched.worker
    const started = worker
    this.#workers.add(started)
    void this.#track(
      started.exited.then(async () => {
        this.#workers.delete(started)
        await launched.cleaned
      }),
    )
    if (this.#closed) await started.stop()
    return started
  }

  async close(): Promise<void> {
    this.#closed = true
    // Starts in flight finish (and stop themselves); then every runner stops and its pid file
    // is gone before close resolves, so nothing writes under the data dir afterwards.
    while (this.#pending.size > 0 || this.#runners.size > 0 || this.#workers.size > 0) {
      await Promise.all([...this.#runners].map((r) => r.stop(0)))
      await Promise.all([...this.#workers].map((w) => w.stop()))
      await Promise.allSettled([...this.#pending])
    }
    this.#spares.length = 0
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#pending.add(promise)
    const forget = () => this.#pending.delete(promise)
    promise.then(forget, forget)
    return promise
  }

  /**
   * Why `charged` (the total counted for `replicas` runners) does not fit now, or `r` (what they
   * ask for in all) ever.
   */
  #refusalFor(
    r: ResourceRequirements,
    charged: ResourceRequirements,
    replicas: number,
  ): Refusal | undefined {
    const node = this.#node
    const cpuCapacity = node.cpus * node.cpuOvercommit
    const checks: ReadonlyArray<
      readonly [Refusal['reason'], number, number, number, string, number]
    > = [
      ['insufficient_gpu', r.numGpus, this.#used.gpus, node.gpus, 'GPUs', charged.numGpus],
      [
        'insufficient_memory',
        r.memoryBytes,
        this.#used.memoryBytes,
        node.memoryBytes,
        'bytes',
        charged.memoryBytes,
      ],
      ['insufficient_cpu', r.numCpus, this.#used.cpus, cpuCapacity, 'CPUs', charged.numCpus],
    ]
    const of = replicas === 1 ? '' : ` (${replicas} replicas)`
    // Never-fitting requests first: they fail at once, whatever else is running.
    for (const [reason, asked, , capacity, unit] of checks) {
      if (asked > capacity + 1e-9) {
        return {
          reason,
          never: true,
          message: `asks for ${asked} ${unit}${of}; this node has ${capacity}`,
          short: asked - capacity,
        }
      }
    }
    for (const [reason, , used, capacity, unit, counted] of checks) {
      if (used + counted > capacity + 1e-9) {
        return {
          reason,
          never: false,
          message: `asks for ${counted} ${unit}${of}; ${Math.max(0, capacity - used)} of ${capacity} are free`,
          short: used + counted - capacity,
        }
      }
    }
    return undefined
  }
}
