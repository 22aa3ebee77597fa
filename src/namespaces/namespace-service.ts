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
import { type NamespacePage, type NamespaceQuery, queryNamespaces } from './namespace-query.js'

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
    const description = input.description ?? null
    const problems = namespaceProblems(input.name, description)
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

  /** The caller's namespaces that match `query`, one page of them (see `queryNamespaces`). */
  async query(principal: Principal, query: NamespaceQuery): Promise<NamespacePage> {
    return queryNamespaces(await this.list(principal), query)
  }

  /**
   * Renames the namespace or changes its description. Throws `namespace_not_found`,
   * `request_validation_failed` for a bad name or description, `namespace_name_taken`.
   */
  async update(
    principal: Principal,
    ref: string,
    changes: {
      readonly name?: string | undefined
      readonly description?: string | null | undefined
    },
  ): Promise<Namespace> {
    const namespace = await this.get(principal, ref)
    const problems = namespaceProblems(changes.name, changes.description)
    if (problems.length > 0) throw invalidInputs(problems)
    const updated = await this.#store.updateNamespace(principal.organizationId, namespace.id, {
      ...(changes.name === undefined ? {} : { name: changes.name }),
      ...(changes.description === undefined ? {} : { description: changes.description }),
      updatedAt: this.#now().toISOString(),
    })
    // Deleted by another request since the lookup.
    if (updated === undefined) throw namespaceNotFound(ref)
    return updated
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

/** What is wrong with a namespace's name and description, each named as the API names it. */
function namespaceProblems(
  name: string | undefined,
  description: string | null | undefined,
): InvalidInput[] {
  const problems: InvalidInput[] = []
  if (name !== undefined && !NAMESPACE_NAME_PATTERN.test(name)) {
    problems.push({
      field: 'namespace_name',
      message: `must match ${NAMESPACE_NAME_PATTERN.source}`,
      type: 'string_pattern_mismatch',
    })
  }
  if (description != null && description.length > NAMESPACE_DESCRIPTION_MAX) {
    problems.push({
      field: 'description',
      message: `must be at most ${NAMESPACE_DESCRIPTION_MAX} characters`,
      type: 'string_too_long',
    })
  }
  return problems
}
