import type { DeploymentState } from '../domain/deployment-state.js'
import type { Reservation } from '../scheduler/scheduler.js'

/** What an audit of the node's capacity found; both empty when nothing leaked. */
export interface ReservationAudit {
  /** Reservations the scheduler holds that no deployment or redeploy owns: leaked capacity. */
  readonly unowned: number
  /**
   * Deployments whose capacity does not match their state (`key: state holding|lacking`): one
   * at rest or waiting that holds capacity blocks others; one serving without any overcommits.
   */
  readonly misheld: readonly string[]
}

/** A deployment as the audit sees it. */
export interface CapacityOwner {
  readonly key: string
  readonly state: DeploymentState
  /** Its current reservation, or `undefined`. */
  readonly reservation: Reservation | undefined
  /** Every reservation it owns (the current one and those of runners still retiring). */
  readonly owned: readonly Reservation[]
}

/** States that never hold capacity; and those that always do (their runners run in it). */
const AT_REST: ReadonlySet<DeploymentState> = new Set(['not_deployed', 'failed', 'pending'])
const RUNNING: ReadonlySet<DeploymentState> = new Set(['loading', 'deployed'])

/**
 * The reservation invariant: every reservation the scheduler holds has exactly one owner (a
 * deployment, or a redeploy bringing up runners), and a deployment holds capacity exactly when
 * its state says runners run or are being started in it. Pure; run at any moment between two
 * synchronous steps of the control plane.
 */
export function auditReservations(
  held: readonly Reservation[],
  owners: Iterable<CapacityOwner>,
  inFlight: Iterable<Reservation>,
): ReservationAudit {
  const owned = new Set<Reservation>(inFlight)
  const misheld: string[] = []
  for (const owner of owners) {
    for (const reservation of owner.owned) owned.add(reservation)
    const holding = owner.reservation !== undefined
    if (holding && AT_REST.has(owner.state)) misheld.push(`${owner.key}: ${owner.state} holding`)
    if (!holding && RUNNING.has(owner.state)) misheld.push(`${owner.key}: ${owner.state} lacking`)
  }
  return { unowned: held.filter((r) => !owned.has(r)).length, misheld }
}
