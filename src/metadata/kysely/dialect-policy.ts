/** Which database constraint a driver error broke, if any. */
export type ConstraintViolation = 'unique' | 'foreign_key' | undefined

/**
 * What the metadata queries need to know about a SQL dialect beyond Kysely's own dialect: each
 * driver reports a broken constraint with its own codes, and PostgreSQL keeps berth's tables in a
 * configurable schema. The dialect adapters (`sqlite/`, `postgres/`) supply one; the queries and
 * migrations are shared.
 */
export interface DialectPolicy {
  /** Translates a driver error into the constraint it broke; `undefined` for anything else. */
  classifyError(err: unknown): ConstraintViolation
  /**
   * The schema holding the migration bookkeeping tables; absent: the connection's default.
   * Kysely looks its tables up by name in every schema unless told which one.
   */
  readonly migrationTableSchema?: string
}

/** The `code` property of a driver error, if it has one. */
export function driverErrorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined
}
