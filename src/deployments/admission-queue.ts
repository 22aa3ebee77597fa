import type { DeploymentReason } from '../domain/deployment-state.js'
import type { ResourceRequirements } from '../domain/model.js'
import { isRefusal, type Reservation, type Scheduler } from '../scheduler/scheduler.js'

/** What admission says of a deployment: it starts now, waits for capacity, or never fits. */
export type Admission =
  | { readonly kind: 'admitted'; readonly reservation: Reservation }
  | {
      readonly kind: 'waits'
      readonly reason: Extract<
        DeploymentReason,
        'insufficient_cpu' | 'insufficient_memory' | 'insufficient_gpu'
      >
      readonly message: string
      /** How much more would have to be free (CPUs, bytes or GPUs, as `reason` says). */
      readonly short: number
    }
  | {
      readonly kind: 'never'
      readonly reason: Extract<DeploymentReason, 'gpu_unavailable' | 'never_fits'>
      readonly message: string
    }

/**
 * Deployments waiting for capacity, in the order they asked, and the one place capacity is
 * asked for (Triton's rate limiter role). Reservations are synchronous, so two admissions never
 * interleave; the oldest waiting deployment is tried first whenever capacity frees.
 */
export class AdmissionQueue<T> {
  readonly #scheduler: Pick<Scheduler, 'reserve'>
  /** Insertion order is request order. */
  readonly #waiting = new Set<T>()

  constructor(scheduler: Pick<Scheduler, 'reserve'>) {
    this.#scheduler = scheduler
  }

  /** Puts `item` at the back (a new request waits behind every earlier one). */
  enqueue(item: T): void {
    this.#waiting.delete(item)
    this.#waiting.add(item)
  }

  /** Takes `item` out of the queue. Idempotent. */
  remove(item: T): void {
    this.#waiting.delete(item)
  }

  /** How many wait. */
  get size(): number {
    return this.#waiting.size
  }

  /** The waiting items, oldest request first. */
  waiting(): T[] {
    return [...this.#waiting]
  }

  /**
   * Holds capacity for `replicas` runners of `resources` each (counted as `charge` each, when
   * given), all or nothing, or says why not: the scheduler's refusal as a deployment reason.
   */
  reserve(
    resources: ResourceRequirements,
    replicas: number,
    charge?: ResourceRequirements,
  ): Admission {
    const reservation = this.#scheduler.reserve(resources, replicas, charge)
    if (!isRefusal(reservation)) return { kind: 'admitted', reservation }
    const { reason, message, short } = reservation
    if (!reservation.never) return { kind: 'waits', reason, message, short }
    return {
      kind: 'never',
      reason: reason === 'insufficient_gpu' ? 'gpu_unavailable' : 'never_fits',
      message,
    }
  }
}
