import { RE2JS } from 're2js'
import type { Namespace } from '../domain/namespace.js'
import { BerthError } from '../errors/berth-error.js'

/**
 * Mixpeek's namespace list query (`POST /v1/namespaces/list`): filters on `namespace_id` and
 * `namespace_name`, a search across the text fields, a sort, and a page of the result.
 */
export interface NamespaceQuery {
  /** Field → a value (equality) or an operator object: `$eq`, `$ne`, `$in`, `$nin`, `$regex`. */
  readonly filters?: Readonly<Record<string, unknown>> | null | undefined
  readonly search?: string | null | undefined
  /** `{field, direction}`: `namespace_name`, `namespace_id`, `created_at` or `updated_at`. */
  readonly sort?: Readonly<Record<string, unknown>> | null | undefined
  readonly caseSensitive?: boolean | undefined
  readonly limit: number
  readonly offset: number
}

/** A page of the namespaces that match, and how many match in all. */
export interface NamespacePage {
  readonly results: Namespace[]
  readonly total: number
}

/** The fields a query may filter and sort on, as the API names them. */
const FIELDS = {
  namespace_id: (n: Namespace) => n.id,
  namespace_name: (n: Namespace) => n.name,
  description: (n: Namespace) => n.description,
  created_at: (n: Namespace) => n.createdAt,
  updated_at: (n: Namespace) => n.updatedAt,
} as const satisfies Record<string, (n: Namespace) => string | null>

type Field = keyof typeof FIELDS

/** Most values of one `$in` or `$nin`: each namespace is then one set lookup. */
const MAX_LIST_VALUES = 1000

/** Longest `$regex` accepted: the names it runs on are short, and so must the patterns be. */
const MAX_PATTERN_LENGTH = 256

/**
 * Applies the query to the organization's namespaces (a handful to a few thousand: filtered in
 * memory). Throws `namespace_query_invalid` for an unknown field or operator, a bad sort, or a
 * `$regex` that is not a plain pattern.
 */
export function queryNamespaces(
  namespaces: readonly Namespace[],
  query: NamespaceQuery,
): NamespacePage {
  const fold = (s: string) => (query.caseSensitive === true ? s : s.toLowerCase())
  const tests = Object.entries(query.filters ?? {}).map(([field, condition]) =>
    filterTest(field, condition, query.caseSensitive === true),
  )
  const search = query.search == null || query.search === '' ? undefined : fold(query.search)
  const matching = namespaces.filter(
    (n) =>
      tests.every((test) => test(n)) &&
      (search === undefined ||
        [n.id, n.name, n.description ?? ''].some((text) => fold(text).includes(search))),
  )
  const { field, descending } = sortOf(query.sort)
  const key = FIELDS[field]
  const sorted = [...matching].sort((a, b) => {
    const order = (key(a) ?? '').localeCompare(key(b) ?? '') || a.id.localeCompare(b.id)
    return descending ? -order : order
  })
  return {
    results: sorted.slice(query.offset, query.offset + query.limit),
    total: matching.length,
  }
}

function filterTest(
  field: string,
  condition: unknown,
  caseSensitive: boolean,
): (n: Namespace) => boolean {
  if (!Object.hasOwn(FIELDS, field)) {
    throw invalid(`cannot filter on "${field}": use ${Object.keys(FIELDS).join(', ')}`)
  }
  const read = FIELDS[field as Field]
  const fold = (s: string) => (caseSensitive ? s : s.toLowerCase())
  const same = (value: unknown) => (n: Namespace) =>
    typeof value === 'string' && fold(read(n) ?? '') === fold(value)
  if (typeof condition === 'string') return same(condition)
  if (typeof condition !== 'object' || condition === null || Array.isArray(condition)) {
    throw invalid(`filter "${field}" must be a string or an operator object`)
  }
  const tests = Object.entries(condition).map(([op, value]): ((n: Namespace) => boolean) => {
    switch (op) {
      case '$eq':
        return same(value)
      case '$ne':
        return (n) => !same(value)(n)
      case '$in':
      case '$nin': {
        if (!Array.isArray(value) || value.length > MAX_LIST_VALUES) {
          throw invalid(`${op} of "${field}" must be an array of at most ${MAX_LIST_VALUES} values`)
        }
        const wanted = new Set(value.filter((v) => typeof v === 'string').map(fold))
        const any = (n: Namespace) => wanted.has(fold(read(n) ?? ''))
        return op === '$in' ? any : (n) => !any(n)
      }
      case '$regex': {
        const pattern = safePattern(value, caseSensitive)
        return (n) => pattern.test(read(n) ?? '')
      }
      default:
        throw invalid(`unknown operator "${op}" on "${field}": use $eq, $ne, $in, $nin, $regex`)
    }
  })
  return (n) => tests.every((test) => test(n))
}

/**
 * A `$regex`, compiled by RE2's rules (re2js): matching takes time linear in the text whatever
 * the pattern, so a hostile pattern cannot hang the server as a backtracking RegExp can.
 */
function safePattern(value: unknown, caseSensitive: boolean): { test(text: string): boolean } {
  if (typeof value !== 'string' || value.length > MAX_PATTERN_LENGTH) {
    throw invalid(`$regex must be a string of at most ${MAX_PATTERN_LENGTH} characters`)
  }
  let pattern: RE2JS
  try {
    pattern = RE2JS.compile(value, caseSensitive ? 0 : RE2JS.CASE_INSENSITIVE)
  } catch {
    throw invalid(
      `$regex "${value}" is not a pattern RE2 accepts (no back-references or look-around)`,
    )
  }
  return { test: (text) => pattern.matcher(text).find() }
}

function sortOf(sort: Readonly<Record<string, unknown>> | null | undefined): {
  field: Field
  descending: boolean
} {
  if (sort == null) return { field: 'created_at', descending: false }
  const field = sort.field ?? 'created_at'
  const direction = sort.direction ?? 'asc'
  // Only a string is ever printed: String() of a deeply nested array overflows the stack.
  if (typeof field !== 'string') throw invalid('sort.field must be a string')
  if (!Object.hasOwn(FIELDS, field)) {
    throw invalid(`cannot sort on "${field}": use ${Object.keys(FIELDS).join(', ')}`)
  }
  if (direction !== 'asc' && direction !== 'desc') {
    throw invalid('sort.direction must be "asc" or "desc"')
  }
  return { field: field as Field, descending: direction === 'desc' }
}

function invalid(message: string): BerthError {
  return new BerthError('namespace_query_invalid', message)
}
