import type { FastifyInstance } from 'fastify'
import { noteFailure, toHttpError } from './error-handler.js'

/** OpenAI's error `type` for an HTTP status, as its API answers them. */
function openAiType(status: number): string {
  if (status === 401) return 'authentication_error'
  if (status === 403) return 'permission_error'
  if (status === 429) return 'rate_limit_error'
  if (status >= 500) return 'server_error'
  return 'invalid_request_error'
}

/**
 * Errors of the routes in `app`'s scope in OpenAI's shape, `{error: {message, type, param,
 * code}}`, so OpenAI's clients raise their own typed errors; the status and berth's stable code
 * stay those of every other route.
 */
export function installOpenAiErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const { status, body, unexpected, retryAfterS } = toHttpError(err)
    noteFailure(request, err, body.error.code, unexpected)
    if (retryAfterS !== undefined) reply.header('retry-after', String(retryAfterS))
    const field = body.detail?.[0]?.loc.at(-1)
    return reply.status(status).send({
      error: {
        message: body.error.message,
        type: openAiType(status),
        param: typeof field === 'string' ? field : null,
        code: body.error.code,
      },
    })
  })
}
