import { maxHeaderSize, STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BerthError, isBerthError } from '../errors/berth-error.js'
import type { ErrorKind } from '../errors/error-codes.js'
import { type FieldError, withFieldErrors } from './field-errors.js'

/** Mixpeek's `error.type` names. */
export type ErrorType =
  | 'BadRequestError'
  | 'UnauthorizedError'
  | 'ForbiddenError'
  | 'NotFoundError'
  | 'AlreadyExistsError'
  | 'PayloadTooLargeError'
  | 'ValidationError'
  | 'TooManyRequestsError'
  | 'InternalServerError'
  | 'UnavailableError'
  | 'TimeoutError'

/** The one table that turns an error kind into an HTTP status and a Mixpeek error type. */
export const HTTP_BY_KIND: Readonly<Record<ErrorKind, { status: number; type: ErrorType }>> = {
  invalid_argument: { status: 400, type: 'BadRequestError' },
  unauthenticated: { status: 401, type: 'UnauthorizedError' },
  permission_denied: { status: 403, type: 'ForbiddenError' },
  not_found: { status: 404, type: 'NotFoundError' },
  client_too_slow: { status: 408, type: 'TimeoutError' },
  already_exists: { status: 409, type: 'AlreadyExistsError' },
  failed_precondition: { status: 409, type: 'AlreadyExistsError' },
  too_large: { status: 413, type: 'PayloadTooLargeError' },
  uri_too_long: { status: 414, type: 'PayloadTooLargeError' },
  invalid_field: { status: 422, type: 'ValidationError' },
  resource_exhausted: { status: 429, type: 'TooManyRequestsError' },
  headers_too_large: { status: 431, type: 'PayloadTooLargeError' },
  internal: { status: 500, type: 'InternalServerError' },
  unavailable: { status: 503, type: 'UnavailableError' },
  deadline_exceeded: { status: 504, type: 'TimeoutError' },
}

/** Mixpeek's `ErrorResponse`; 422 bodies also carry FastAPI's `detail`. */
export interface ErrorBody {
  readonly success: false
  readonly status: number
  readonly error: {
    readonly type: ErrorType
    readonly message: string
    readonly code: string
    readonly details?: Readonly<Record<string, unknown>>
  }
  readonly detail?: readonly FieldError[]
}

export interface HttpError {
  readonly status: number
  readonly body: ErrorBody
  /** Seconds a client should wait before retrying (`Retry-After`): set for 429 answers. */
  readonly retryAfterS?: number
  /** True for server faults: they are logged with their stack, the client sees nothing of it. */
  readonly unexpected: boolean
}

/**
 * How long a client refused for load (`resource_exhausted`) should wait: a deployment's queue
 * drains in milliseconds to seconds, so a second is short and still lets it drain.
 */
const RETRY_AFTER_S = 1

/** Pure: turns anything thrown while handling a request into a status and a body. */
export function toHttpError(err: unknown): HttpError {
  const known = isBerthError(err) ? withFieldErrors(err) : fromFastifyError(err)
  // A kind outside the table (only a forged code could make one) is a server fault, not a throw.
  if (
    known === undefined ||
    !Object.hasOwn(HTTP_BY_KIND, known.kind) ||
    known.kind === 'internal'
  ) {
    // Never the original message: it may hold SQL, paths or secrets.
    return {
      status: 500,
      body: envelope(new BerthError('internal_error', 'internal server error')),
      unexpected: true,
    }
  }
  const status = HTTP_BY_KIND[known.kind].status
  if (known.kind === 'resource_exhausted') {
    return { status, body: envelope(known), unexpected: false, retryAfterS: RETRY_AFTER_S }
  }
  return { status, body: envelope(known), unexpected: false }
}

function envelope(err: BerthError): ErrorBody {
  const { status, type } = HTTP_BY_KIND[err.kind]
  const error =
    err.details === undefined
      ? { type, message: err.message, code: err.code }
      : { type, message: err.message, code: err.code, details: err.details }
  const validationErrors = err.details?.validation_errors
  if (err.code === 'request_validation_failed' && Array.isArray(validationErrors)) {
    return { success: false, status, error, detail: validationErrors as FieldError[] }
  }
  return { success: false, status, error }
}

/**
 * Fastify's own client errors (unparsable JSON, wrong content type, body over the limit) become
 * berth errors; their messages are Fastify's fixed texts, safe to show.
 */
function fromFastifyError(err: unknown): BerthError | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const { statusCode, code, message } = err as Partial<FastifyError>
  if (typeof statusCode !== 'number' || statusCode < 400 || statusCode >= 500) return undefined
  if (statusCode === 413) {
    return new BerthError('request_body_too_large', 'request body is too large', { cause: err })
  }
  return new BerthError('request_malformed', message ?? 'malformed request', {
    details: code === undefined ? {} : { reason: code },
    cause: err,
  })
}

/** An error's code, or its message: what a debug line needs, without a stack. */
function reasonOf(err: unknown): string {
  if (isBerthError(err)) return err.code
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string') return code
  return err instanceof Error ? err.message : String(err)
}

/** The code each refused request was answered with, for its one log line (server.ts). */
const refusals = new WeakMap<FastifyRequest, string>()

/** The error code `request` was answered with, if it was refused. */
export function refusalOf(request: FastifyRequest): string | undefined {
  return refusals.get(request)
}

/**
 * Notes how a request failed: a fault of the server's is logged with its stack; a refusal (a
 * 4xx, or an expected 5xx such as a model not ready) only leaves its code for the request's line.
 */
export function noteFailure(
  request: FastifyRequest,
  err: unknown,
  code: string,
  unexpected: boolean,
): void {
  refusals.set(request, code)
  if (unexpected) request.log.error({ err }, 'request failed')
}

/** Installs the one error handler and the unknown-route handler. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const { status, body, unexpected, retryAfterS } = toHttpError(err)
    if (reply.raw.destroyed) {
      // The client went away (an upload's stream then fails with "aborted"): its doing, not a
      // fault, and the close is logged once already (server.ts). Nothing can be answered.
      request.log.debug({ reason: reasonOf(err) }, 'request ended after the client went away')
    } else noteFailure(request, err, body.error.code, unexpected)
    if (retryAfterS !== undefined) reply.header('retry-after', String(retryAfterS))
    return reply.status(status).send(body)
  })
  app.setNotFoundHandler((request) => {
    throw new BerthError('route_not_found', `no route ${request.method} ${request.url}`, {
      details: { method: request.method, path: request.url.split('?')[0] },
    })
  })
}

/**
 * What Node's HTTP parser could not read (its `clientError` event, before any route) as a berth
 * error: 408 `request_timeout` (the head did not arrive within the headers timeout), 431
 * `request_headers_too_large` (request line and headers past Node's limit), 413
 * `request_body_too_large` (chunk extensions past Node's limit), else 400 `request_malformed`
 * with the parser's reason (`HPE_…`: Node's fixed names, safe to show).
 */
export function clientErrorOf(err: { readonly code?: unknown }): BerthError {
  const code = typeof err.code === 'string' ? err.code : undefined
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new BerthError('request_timeout', 'the request head did not arrive in time', {
        details: { phase: 'headers' },
        cause: err,
      })
    case 'HPE_HEADER_OVERFLOW':
      return new BerthError(
        'request_headers_too_large',
        `the request line and headers are larger than ${maxHeaderSize} bytes`,
        { details: { max_bytes: maxHeaderSize }, cause: err },
      )
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new BerthError('request_body_too_large', 'the chunk extensions are too large', {
        cause: err,
      })
    default:
      return new BerthError('request_malformed', 'the request is not valid HTTP/1.1', {
        details: code !== undefined && /^HPE_[A-Z_]+$/.test(code) ? { reason: code } : {},
        cause: err,
      })
  }
}

/**
 * A whole HTTP/1.1 response carrying `err`'s envelope and `Connection: close`, for a connection
 * no route can answer on (its request could not be read, or will not be read to its end); with
 * the request's id when there was a request to give one to.
 */
export function rawErrorResponse(err: BerthError, requestId?: string): string {
  const { status, body } = toHttpError(err)
  const json = JSON.stringify(body)
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    (requestId === undefined ? '' : `x-request-id: ${requestId}\r\n`) +
    `Content-Length: ${Buffer.byteLength(json)}\r\n` +
    'Connection: close\r\n\r\n' +
    json
  )
}

/**
 * Fastify's `frameworkErrors`: what its router refuses before any hook runs, in the envelope: a
 * path that does not percent-decode (400 `request_malformed`) and a path segment longer than the
 * router's bound (414 `request_uri_too_long`), with `Connection: close`.
 */
export function answerFrameworkError(
  err: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const refused =
    err.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new BerthError('request_uri_too_long', 'a segment of the path is too long', { cause: err })
      : err
  const { status, body, unexpected } = toHttpError(refused)
  noteFailure(request, err, body.error.code, unexpected)
  // Like the parser's refusals: a client that sends these is not kept.
  reply.code(status).header('x-request-id', request.id).header('connection', 'close').send(body)
}
