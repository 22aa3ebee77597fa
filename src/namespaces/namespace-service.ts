import { looksLikeId, newId } from '../domain/ids.js'
import {
  NAMESPACE_DESCRIPTION_MAX,
  NAMESPACE_NAME_PATTERN,
  type Namespace,
} from '../domain/namespace.js'
import type { Principal } from '../domain/organization.js'
import { type InvalidInput, invalidInputs } from '../errors/berth-error.js'
import type { NamespaceRecords } from '../metadata/metadata-store.js'
import { namespaceNotFound } from '../metadata/store-errors.js'

export interface NewNamespace {
  readonly name: string
  readonly description?: string | null | undefined
}

export interface NamespaceServiceOptions {
  readonly now?: () => Date
}

/**
 * Namespaces inside the caller's organization. Another organization's namespace is always
 * `namespace_not_found`, exactly as if it did not exist.
 */
export class NamespaceService {
  readonly #store: NamespaceRecords
  readonly #now: () => Date

  constructor(store: NamespaceRecords, options: NamespaceServiceOptions = {}) {
    this.#store = store
    this.#now = options.now ?? (() => new Date())
  }

  /**
   * Throws `request_validation_failed` for a bad name or description (each named in
   * `details.invalid_inputs` as the API names it), `namespace_name_taken`.
   */
  async create(principal: Principal, input: NewNamespace): Promise<Namespace> {
    const problems: InvalidInput[] = []
    if (!NAMESPACE_NAME_PATTERN.test(input.name)) {
      problems.push({
        field: 'namespace_name',
        message: `must match ${NAMESPACE_NAME_PATTERN.source}`,
        type: 'string_pattern_mismatch',
      })
    }
    const description = input.description ?? null
    if (description !== null && description.length > NAMESPACE_DESCRIPTION_MAX) {
      problems.push({
        field: 'description',
        message: `must be at most ${NAMESPACE_DESCRIPTION_MAX} characters`,
        type: 'string_too_long',
      })
    }
    if (problems.length > 0) throw invalidInputs(problems)

    const now = this.#now().toISOString()
    const namespace: Namespace = {
      id: newId('ns'),
      organizationId: principal.organizationId,
      name: input.name,
      description,
      createdAt: now,
      updatedAt: now,
    }
    await this.#store.createNamespace(namespace)
    return namespace
  }

  /** The caller's namespaces, oldest first. */
  list(principal: Principal): Promise<Namespace[]> {
    return this.#store.listNamespaces(principal.organizationId)
  }

  /** By id (`ns_…`) or name. Throws `namespace_not_found`. */
  async get(principal: Principal, ref: string): Promise<Namespace> {
    const namespace = await this.#store.findNamespace(
      principal.organizationId,
      looksLikeId('ns', ref) ? { id: ref } : { name: ref },
    )
    if (namespace === undefined) throw namespaceNotFound(ref)
    return namespace
  }

  /**
   * Removes the namespace and answers what was removed. Throws `namespace_not_found`, and
   * `namespace_not_empty` while it holds models.
   */
  async delete(principal: Principal, ref: string): Promise<Namespace> {
    const namespace = await this.get(principal, ref)
    const deleted = await this.#store.deleteNamespace(principal.organizationId, namespace.id)
    // Another request deleted it between the lookup and now.
    if (!deleted) throw namespaceNotFound(ref)
    return namespace
  }
}
