import { ERROR_CODES, type ErrorCode, type ErrorKind } from './error-codes.js'

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

/** One input a service refused, named as the API names it (e.g. `namespace_name`). */
export interface InvalidInput {
  readonly field: string
  readonly message: string
  /** What is wrong with it, e.g. `string_pattern_mismatch`, `string_too_long`. */
  readonly type: string
}

/**
 * `request_validation_failed` raised by a service, listing every refused input in
 * `details.invalid_inputs`. Each transport shows it in its own shape (HTTP: FastAPI's
 * `detail[]`, see `http/field-errors.ts`).
 */
export function invalidInputs(inputs: readonly InvalidInput[]): BerthError {
  const names = inputs.map((input) => input.field).join(', ')
  return new BerthError('request_validation_failed', `invalid request: ${names}`, {
    details: { invalid_inputs: inputs },
  })
}
