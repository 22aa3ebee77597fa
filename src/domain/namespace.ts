export interface Namespace {
  readonly id: string
  readonly organizationId: string
  readonly name: string
  readonly description: string | null
  readonly createdAt: string
  readonly updatedAt: string
}

/**
 * Namespace names: 3 to 64 characters, a letter first. Names may not start with `ns_`, so a
 * path segment is never ambiguous between an id and a name.
 */
export const NAMESPACE_NAME_PATTERN = /^(?!ns_)[a-zA-Z][a-zA-Z0-9_-]{2,63}$/
export const NAMESPACE_DESCRIPTION_MAX = 1000
