import type { ResourceRequirements } from '../domain/model.js'
import type { LoadTarget, RunnerRuntime } from '../domain/serving-plan.js'
import type { Signature, WireTensor } from '../tensors/tensor.js'

/** Capacity held for a deployment's runners (`replicas` of `resources` each) until released. */
export interface Reservation {
  /** What each runner gets (its memory is the runner's limit). */
  readonly resources: ResourceRequirements
  /**
   * What each runner is counted as against the node: `resources` unless the reservation was
   * made with a smaller charge (an on-demand model, admitted by its resident size).
   */
  readonly charged: ResourceRequirements
  readonly replicas: number
  /**
   * Counts each runner's memory as `memoryBytes` from now (at most what `resources` ask): an
   * on-demand deployment measured after its load. Never refused: the runners are running.
   */
  recharge(memoryBytes: number): void
  /** Returns the capacity to the node. Idempotent. */
  release(): void
}

/** Why a runner cannot be placed: `now` may change as others leave; `never` cannot. */
export interface Refusal {
  readonly reason: 'insufficient_cpu' | 'insufficient_memory' | 'insufficient_gpu'
  readonly never: boolean
  readonly message: string
  /** How much more would have to be free (CPUs, bytes or GPUs, as `reason` says). */
  readonly short: number
}

/**
 * How a runner ended. `stopped` is the only expected one; `unresponsive`: it outlived a call's
 * timeout, or did not answer a liveness ping while idle; `memory_limit_exceeded`: it went past
 * its memory while loading or idle, `request_out_of_memory`: while running requests (they failed
 * with `inference_out_of_memory`); `moved`: the model went past its own memory share in a runner
 * process it shared with others, and was unloaded from it so its neighbours serve on (its next
 * start gets a process of its own).
 */
export type RunnerEndCause =
  | 'stopped'
  | 'crashed'
  | 'memory_limit_exceeded'
  | 'request_out_of_memory'
  | 'protocol_error'
  | 'unresponsive'
  | 'moved'

export interface RunnerEnd {
  readonly cause: RunnerEndCause
  readonly message: string
}

export interface RunnerSpec {
  readonly runtime: RunnerRuntime
  /** For logs: `namespace/model_id`. Two runners of one label never share a process. */
  readonly label: string
  /** Whose model it is: runners of two organizations never share a process. */
  readonly organizationId: string
  /**
   * Whether the model may share a runner process with other models of its organization; the
   * scheduler decides whether it does (by runtime, size and its own limits). Unset: it does not.
   */
  readonly mayShare?: boolean
  /** The size of the model's files, for that decision; unset: the model does not share. */
  readonly modelBytes?: number
  /** Node labels the runner's node must carry, where the scheduler places on several nodes. */
  readonly nodeSelector?: Readonly<Record<string, string>>
}

/**
 * One model in a runner process: the process is its own, or one it shares with other models of
 * its organization (each seen through its own `Runner`). Calls fail with berth errors: `model_load_failed`,
 * `inference_failed` (the model refused the values), `runner_*` (the runner is gone or broken).
 */
export interface Runner {
  /** Stable for the runner's life, e.g. its process id (with its slot in a shared process). */
  readonly id: string
  /** The process it runs in (shared by the models of a shared process); `undefined`: none. */
  readonly pid: number | undefined
  /**
   * Loads the model at `target.path` (a file, or for weights the model folder with the files
   * named in `target.weights`). Throws `runner_timeout` past `timeoutMs`.
   */
  load(target: LoadTarget, timeoutMs: number): Promise<Signature>
  /** Runs the model. Past `timeoutMs` the runner is presumed hung and ended (`runner_timeout`). */
  infer(
    inputs: readonly WireTensor[],
    outputs: readonly string[] | null,
    timeoutMs: number,
  ): Promise<WireTensor[]>
  /** Requests sent and not yet answered. */
  readonly inFlight: number
  /** Whether the runner failed and takes no more requests (`ended` follows). */
  readonly failed: boolean
  /** Waits for in-flight requests (at most `timeoutMs`), then ends the runner. Idempotent. */
  stop(drainMs: number): Promise<void>
  /** Resolves once, when the runner has ended, with why. */
  readonly ended: Promise<RunnerEnd>
  /**
   * The memory this model holds resident, as last measured: its process's resident set, or in a
   * shared process the model's own share plus its part of what the process holds besides its
   * models. `undefined` before a measurement, or where memory cannot be measured.
   */
  residentBytes(): number | undefined
}

/** What the node offers deployments, and how much of it reservations hold. */
export interface NodeUsage {
  /** CPUs that reservations may add up to (the node's CPUs times the overcommit factor). */
  readonly cpus: number
  readonly memoryBytes: number
  readonly gpus: number
  readonly reserved: { readonly cpus: number; readonly memoryBytes: number; readonly gpus: number }
}

/**
 * Places runners on capacity. `reserve` is synchronous so admission decisions never
 * interleave; a reservation outlives its runners (a crashed runner restarts inside it).
 */
export interface Scheduler {
  /**
   * Holds capacity for `replicas` runners of `resources` each, all or nothing, or says why it
   * cannot now (or ever). `charge`: what each runner is counted as against the node instead of
   * `resources` (never more than them); whether it can ever fit is judged by `resources`.
   */
  reserve(
    resources: ResourceRequirements,
    replicas?: number,
    charge?: ResourceRequirements,
  ): Reservation | Refusal
  /** The reservations not yet released: the capacity that is taken, for audits. */
  held(): readonly Reservation[]
  /** The node's capacity and what reservations hold of it now. */
  usage(): NodeUsage
  /**
   * Starts a runner inside a reservation; resolves after its handshake. Throws
   * `runner_start_timeout` or `runner_crashed` when it does not come up.
   */
  start(reservation: Reservation, spec: RunnerSpec): Promise<Runner>
  /**
   * Calls `listener` whenever the capacity offered changes (a swarm gained or lost a node), so
   * that deployments waiting for room are admitted. Absent where capacity never changes.
   */
  onResize?(listener: () => void): void
  /** Ends every runner it started (SIGTERM, then SIGKILL). Idempotent. */
  close(): Promise<void>
}

export function isRefusal(value: Reservation | Refusal): value is Refusal {
  return 'reason' in value
}
