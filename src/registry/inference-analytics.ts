import { HOUR_MS, hourOf, type ModelPerformance, performanceOf } from '../domain/inference-stats.js'
import type { Namespace } from '../domain/namespace.js'
import type { Principal } from '../domain/organization.js'
import type { InferenceRecords } from '../metadata/metadata-store.js'
import type { NamespaceService } from '../namespaces/namespace-service.js'

export interface InferenceAnalyticsDeps {
  readonly namespaces: Pick<NamespaceService, 'get'>
  readonly records: Pick<InferenceRecords, 'listInferenceBuckets'>
  /** Writes this server's counts not written yet (the recorder's `flush`). */
  readonly flush: () => Promise<void>
  /** Milliseconds since the epoch. */
  readonly now: () => number
}

/** A namespace's models' inference traffic over the last hours. */
export interface PerformanceReport {
  readonly namespace: Namespace
  /** The hours asked for. */
  readonly hours: number
  /** When the window starts: the start of the oldest hour in it (ISO-8601). */
  readonly since: string
  readonly models: readonly ModelPerformance[]
}

/**
 * Reads the hourly inference records of the caller's own namespaces (another organization's
 * namespace is `namespace_not_found`, as everywhere). The records are kept by every server that
 * shares the metadata store; this one's counts are written first, so that an answer includes
 * every request this server answered before it.
 */
export class InferenceAnalytics {
  readonly #deps: InferenceAnalyticsDeps

  constructor(deps: InferenceAnalyticsDeps) {
    this.#deps = deps
  }

  /**
   * Each model of the namespace that had traffic in the window: the current hour and the
   * `hours - 1` before it. `model` keeps only the model with that `model_id` or name (every
   * version of it); one that matches nothing answers no model. Throws `namespace_not_found`.
   */
  async performance(
    principal: Principal,
    namespaceRef: string,
    query: { readonly hours: number; readonly model?: string | undefined },
  ): Promise<PerformanceReport> {
    const namespace = await this.#deps.namespaces.get(principal, namespaceRef)
    await this.#deps.flush()
    const sinceHour = hourOf(this.#deps.now()) - query.hours + 1
    const buckets = await this.#deps.records.listInferenceBuckets({
      organizationId: principal.organizationId,
      namespaceId: namespace.id,
      sinceHour,
      model: query.model,
    })
    return {
      namespace,
      hours: query.hours,
      since: new Date(sinceHour * HOUR_MS).toISOString(),
      models: performanceOf(buckets),
    }
  }
}
