import { ERROR_CODES, type ErrorCode, type ErrorKind } from './error-codes.js'

/** One invalid input field, in FastAPI's shape (`loc`, `msg`, `type`). */
export interface FieldError {
  readonly loc: readonly (string | number)[]
  readonly msg: string
  readonly type: string
}

/** Identifiers and facts that are safe to show a client. Never paths, SQL or secrets. */
export type ErrorDetails = Readonly<Record<string, unknown>>

export interface BerthErrorOptions {
  readonly details?: ErrorDetails
  readonly cause?: unknown
}

/**
 * The one error class of berth. `code` is stable API (see `ERROR_CODES`), `kind` follows from
 * the code, `details` go to clients, `cause` keeps the original error for the logs only.
 */
export class BerthError extends Error {
  readonly code: ErrorCode
  readonly kind: ErrorKind
  readonly details: ErrorDetails | undefined

  constructor(code: ErrorCode, message: string, options: BerthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'BerthError'
    this.code = code
    this.kind = ERROR_CODES[code]
    this.details = options.details
  }
}

/** True when `err` is a BerthError, and has `code` when one is given. */
export function isBerthError(err: unknown, code?: ErrorCode): err is BerthError {
  return err instanceof BerthError && (code === undefined || err.code === code)
}

/** A 422 listing every invalid field at once. */
export function fieldValidationError(fieldErrors: readonly FieldError[]): BerthError {
  const names = fieldErrors.map((e) => e.loc.join('.')).join(', ')
  return new BerthError('request_validation_failed', `invalid request: ${names}`, {
    details: { validation_errors: fieldErrors },
  })
}

/** The parts of a schema-validation issue (zod's shape) that a FieldError needs. */
export interface ValidationIssue {
  readonly path: readonly PropertyKey[]
  readonly message: string
  readonly code: string
  readonly input?: unknown
}

/**
 * FastAPI-style field errors from validation issues, under `root` (`body`, `query`, `path`).
 * An issue whose input is absent is FastAPI's `missing`.
 */
export function toFieldErrors(root: string, issues: readonly ValidationIssue[]): FieldError[] {
  return issues.map((issue) => {
    const loc = [root, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))]
    if (issue.input === undefined) return { loc, msg: 'Field required', type: 'missing' }
    return { loc, msg: issue.message, type: issue.code }
  })
}
