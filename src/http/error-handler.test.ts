import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BerthError, invalidInputs } from '../errors/berth-error.js'
import type { ErrorCode } from '../errors/error-codes.js'
import { toHttpError } from './error-handler.js'
import { fieldValidationError } from './field-errors.js'

describe('toHttpError', () => {
  it('maps a berth error to its status, type and code, with details', () => {
    const err = new BerthError('namespace_not_found', 'namespace "x" not found', {
      details: { id: 'x' },
    })
    assert.deepEqual(toHttpError(err), {
      status: 404,
      unexpected: false,
      body: {
        success: false,
        status: 404,
        error: {
          type: 'NotFoundError',
          message: 'namespace "x" not found',
          code: 'namespace_not_found',
          details: { id: 'x' },
        },
      },
    })
  })

  it('adds FastAPI detail[] to 422 answers', () => {
    const fields = [{ loc: ['body', 'a'], msg: 'Field required', type: 'missing' }]
    const { status, body } = toHttpError(fieldValidationError(fields))
    assert.equal(status, 422)
    assert.equal(body.error.type, 'ValidationError')
    assert.deepEqual(body.detail, fields)
  })

  it("shows a service's refused inputs as body fields in FastAPI's detail[]", () => {
    const { status, body } = toHttpError(
      invalidInputs([
        { field: 'namespace_name', message: 'must match ^x$', type: 'string_pattern_mismatch' },
      ]),
    )
    const fields = [
      { loc: ['body', 'namespace_name'], msg: 'must match ^x$', type: 'string_pattern_mismatch' },
    ]
    assert.equal(status, 422)
    assert.deepEqual(body, {
      success: false,
      status: 422,
      error: {
        type: 'ValidationError',
        message: 'invalid request: body.namespace_name',
        code: 'request_validation_failed',
        details: { validation_errors: fields },
      },
      detail: fields,
    })
  })

  it('hides everything about unknown errors', () => {
    const { status, body, unexpected } = toHttpError(
      new Error('SQLITE_ERROR: no such table at /srv/data/berth.db'),
    )
    assert.equal(status, 500)
    assert.equal(unexpected, true)
    assert.deepEqual(body.error, {
      type: 'InternalServerError',
      message: 'internal server error',
      code: 'internal_error',
    })
    assert.equal(toHttpError('a string').status, 500)
    assert.equal(toHttpError(null).status, 500)
  })

  it('answers 429 for exhausted resources, with a Retry-After', () => {
    const { status, body, retryAfterS } = toHttpError(
      new BerthError('queue_full', 'the model has 4 requests waiting already', {
        details: { max_queue_size: 4 },
      }),
    )
    assert.equal(status, 429)
    assert.equal(body.error.type, 'TooManyRequestsError')
    assert.equal(body.error.code, 'queue_full')
    assert.equal(retryAfterS, 1)
    assert.equal(toHttpError(new BerthError('model_not_found', 'no')).retryAfterS, undefined)
  })

  it('answers 500, never throws, for an error whose kind is not in the table', () => {
    // What a code from outside the catalog gave before runner codes were checked.
    const forged = new BerthError('constructor' as ErrorCode, 'forged')
    const { status, body, unexpected } = toHttpError(forged)
    assert.equal(status, 500)
    assert.equal(unexpected, true)
    assert.equal(body.error.code, 'internal_error')
  })

  it("maps Fastify's client errors, never its server errors", () => {
    const tooLarge = Object.assign(new Error('Request body is too large'), {
      statusCode: 413,
      code: 'FST_ERR_CTP_BODY_TOO_LARGE',
    })
    assert.equal(toHttpError(tooLarge).body.error.code, 'request_body_too_large')
    const badMedia = Object.assign(new Error('Unsupported Media Type'), {
      statusCode: 415,
      code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
    })
    assert.equal(toHttpError(badMedia).status, 400)
    assert.equal(toHttpError(badMedia).body.error.code, 'request_malformed')
    const serverSide = Object.assign(new Error('secret /path'), { statusCode: 500 })
    assert.equal(toHttpError(serverSide).body.error.message, 'internal server error')
  })
})
