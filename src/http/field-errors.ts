import { BerthError, type InvalidInput } from '../errors/berth-error.js'

/** One invalid request field, in FastAPI's shape (`loc`, `msg`, `type`). */
export interface FieldError {
  readonly loc: readonly (string | number)[]
  readonly msg: string
  readonly type: string
}

/** A 422 listing every invalid field at once (`details.validation_errors`, and `detail[]`). */
export function fieldValidationError(
  fieldErrors: readonly FieldError[],
  options: { readonly cause?: unknown } = {},
): BerthError {
  const names = fieldErrors.map((e) => e.loc.join('.')).join(', ')
  return new BerthError('request_validation_failed', `invalid request: ${names}`, {
    details: { validation_errors: fieldErrors },
    cause: options.cause,
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

/**
 * A service's `request_validation_failed` (inputs named in `details.invalid_inputs`) as the
 * 422 FastAPI clients expect: each input is a field of the request body. Any other error is
 * returned as it is.
 */
export function withFieldErrors(err: BerthError): BerthError {
  const inputs = err.details?.invalid_inputs
  if (err.code !== 'request_validation_failed' || !Array.isArray(inputs)) return err
  const fieldErrors = (inputs as InvalidInput[]).map((input) => ({
    loc: ['body', input.field],
    msg: input.message,
    type: input.type,
  }))
  return fieldValidationError(fieldErrors, { cause: err })
}
