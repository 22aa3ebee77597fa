/**
 * The server said no: the `code` of its error envelope (stable: branch on it), its message and
 * details, and the HTTP status. `body` is the answer as the server sent it.
 */
export class BerthApiError extends Error {
  override readonly name = 'BerthApiError'
  readonly status: number
  readonly code: string
  readonly type: string | undefined
  readonly details: Readonly<Record<string, unknown>> | undefined
  readonly body: unknown

  constructor(status: number, body: unknown) {
    const error = envelopeOf(body)
    super(error?.message ?? `the server answered HTTP ${status}`)
    this.status = status
    this.code = error?.code ?? `http_${status}`
    this.type = error?.type
    this.details = error?.details
    this.body = body
  }
}

/** The server could not be reached (refused, reset, unknown host, TLS): nothing was answered. */
export class BerthConnectionError extends Error {
  override readonly name = 'BerthConnectionError'
  readonly code = 'server_unreachable'
  readonly url: string

  constructor(url: string, cause: unknown) {
    const reason = cause instanceof Error ? ((cause.cause as Error | undefined) ?? cause) : cause
    super(`cannot reach ${url}: ${reason instanceof Error ? reason.message : String(reason)}`, {
      cause,
    })
    this.url = url
  }
}

interface Envelope {
  readonly code?: string
  readonly type?: string
  readonly message?: string
  readonly details?: Record<string, unknown>
}

function envelopeOf(body: unknown): Envelope | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const error = (body as { error?: unknown }).error
  if (typeof error !== 'object' || error === null) return undefined
  const { code, type, message, details } = error as Record<string, unknown>
  return {
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof type === 'string' ? { type } : {}),
    ...(typeof message === 'string' ? { message } : {}),
    ...(typeof details === 'object' && details !== null
      ? { details: details as Record<string, unknown> }
      : {}),
  }
}
