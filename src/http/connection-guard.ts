import type { ServerOptions as NodeServerOptions, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { HttpTimeouts } from '../config/config.js'
import { BerthError } from '../errors/berth-error.js'
import { clientErrorOf, rawErrorResponse } from './error-handler.js'

/**
 * Route `config` of the routes whose body is an upload (gigabytes, for as long as it keeps
 * coming): their body has no whole-body bound, only the progress bound.
 */
export const STREAMED_BODY = { streamedBody: true } as const

/** Fastify's options that set Node's own bounds and answer what its parser refuses. */
export interface ConnectionOptions {
  readonly http: NodeServerOptions
  readonly keepAliveTimeout: number
  readonly requestTimeout: number
  readonly connectionTimeout: number
  readonly clientErrorHandler: (err: Error, socket: Socket) => void
}

/**
 * How long berth waits on a client, and what a connection answers when it gives up on one.
 *
 * - The head (request line and headers) must arrive within `headersMs` (Node's `headersTimeout`),
 *   an idle kept-alive connection is closed after `keepAliveMs`.
 * - A body must keep coming: no byte for `bodyIdleMs` cuts it off; a body that is not an upload
 *   (`STREAMED_BODY`) must also have arrived `bodyMs` after the head. An upload has no whole-body
 *   bound, so a 4 GiB archive that keeps flowing is never cut. Node's own whole-request bound
 *   (`requestTimeout`) is off for that reason.
 * - An answer sent before the body's end (a 401 or 403 from the authentication hook, a 413 from
 *   the length header) carries `Connection: close`: the rest of the body is not kept, and the
 *   connection is closed soon after the answer (a lingering close: see `lingerOnClose`).
 * - Whatever Node's parser refuses (a head too large or too slow, a bad request line, a lying or
 *   unreadable `Content-Length`) is answered in the error envelope, with `Connection: close`.
 *
 * A cut-off body is answered 408 `request_timeout` when no answer has started, and its
 * connection closed: the reader of the body sees the error (an upload removes its temp file).
 */
export class ConnectionGuard {
  readonly #timeouts: HttpTimeouts
  readonly #log: FastifyBaseLogger
  /** The latest response on each connection: a parser error never writes into one under way. */
  readonly #responses = new WeakMap<Socket, ServerResponse>()

  constructor(timeouts: HttpTimeouts, log: FastifyBaseLogger) {
    this.#timeouts = timeouts
    this.#log = log
  }

  /** To spread into Fastify's options. */
  serverOptions(): ConnectionOptions {
    const { headersMs, keepAliveMs } = this.#timeouts
    return {
      http: {
        headersTimeout: headersMs,
        // Node checks heads against `headersTimeout` this often (by default every 30 s).
        connectionsCheckingInterval: checkEvery(headersMs),
        // Node's whole-request bound would cut long uploads; bodies have their own bounds here.
        requestTimeout: 0,
      },
      keepAliveTimeout: keepAliveMs,
      requestTimeout: 0,
      // No idle bound on the socket as such: a request being worked on (a deploy that waits) is
      // silent for minutes, and the waits on the client are bounded above.
      connectionTimeout: 0,
      clientErrorHandler: (err, socket) => this.#clientError(err, socket),
    }
  }

  /** Installs the body bounds and `Connection: close` after an early answer. */
  install(app: FastifyInstance): void {
    app.addHook('onRequest', (request, reply, done) => {
      const socket = connectionOf(request)
      if (socket !== undefined) {
        this.#responses.set(socket, reply.raw)
        if (hasBody(request) && !request.raw.complete) this.#watchBody(request, reply, socket)
      }
      done()
    })
    app.addHook('onSend', (request, reply, payload, done) => {
      const socket = connectionOf(request)
      if (socket !== undefined && hasBody(request) && !request.raw.complete) {
        reply.header('connection', 'close')
        lingerOnClose(socket)
      }
      done(null, payload)
    })
  }

  #watchBody(request: FastifyRequest, reply: FastifyReply, socket: Socket): void {
    const { bodyMs, bodyIdleMs } = this.#timeouts
    const whole = isStreamedBody(request) ? Number.POSITIVE_INFINITY : bodyMs
    const req = request.raw
    const start = performance.now()
    let bytes = socket.bytesRead
    let progressAt = start
    const timer = setInterval(
      () => {
        if (req.complete || socket.destroyed) {
          clearInterval(timer)
          return
        }
        const now = performance.now()
        // Bytes that arrived, or bytes waiting for berth's own reader: then berth is the slow one.
        if (socket.bytesRead !== bytes || req.readableLength > 0) {
          bytes = socket.bytesRead
          progressAt = now
        }
        if (now - progressAt >= bodyIdleMs) {
          clearInterval(timer)
          this.#cut(request, reply, socket, 'idle', bodyIdleMs)
        } else if (now - start >= whole) {
          clearInterval(timer)
          this.#cut(request, reply, socket, 'whole', bodyMs)
        }
      },
      checkEvery(Math.min(bodyIdleMs, whole)),
    )
    timer.unref()
    // Done once the body has been read: left to its next check (up to a second away), the timer
    // would keep every answered request, its reply and its buffers alive until then.
    req.once('end', () => clearInterval(timer))
  }

  #cut(
    request: FastifyRequest,
    reply: FastifyReply,
    socket: Socket,
    bound: 'idle' | 'whole',
    timeoutMs: number,
  ): void {
    const err = new BerthError(
      'request_timeout',
      bound === 'idle'
        ? `no byte of the request body arrived for ${timeoutMs} ms`
        : `the request body did not arrive within ${timeoutMs} ms`,
      { details: { phase: 'body', timeout_ms: timeoutMs } },
    )
    request.log.info({ code: err.code, bound, timeoutMs }, 'request body too slow: closing')
    if (!reply.raw.headersSent && socket.writable) socket.write(rawErrorResponse(err, request.id))
    // The reader of the body (an upload's staging) fails with this error and cleans up.
    request.raw.destroy(err)
    socket.destroy()
  }

  #clientError(err: Error & { code?: unknown }, socket: Socket): void {
    // A reset, or a connection already closed (a body cut off above): nobody to answer.
    if (err.code === 'ECONNRESET' || socket.destroyed) {
      socket.destroy()
      return
    }
    const refused = clientErrorOf(err)
    this.#log.info({ code: refused.code, reason: err.code }, 'request refused by the HTTP parser')
    const inFlight = this.#responses.get(socket)
    const answerable = inFlight === undefined || inFlight.writableFinished || !inFlight.headersSent
    if (answerable && socket.writable) socket.write(rawErrorResponse(refused))
    socket.destroy()
  }
}

/** The client's connection; none for a request injected in-process (tests, nothing to guard). */
function connectionOf(request: FastifyRequest): Socket | undefined {
  const socket: unknown = request.raw.socket
  return socket instanceof Socket ? socket : undefined
}

/**
 * How long a connection answered before its body's end keeps reading (and discarding) after the
 * answer, before it is cut: long enough for a client that writes its whole body before reading
 * (Python's `requests`, `fetch`) to finish on a local network and read the answer, short enough
 * that a trickling client holds nothing.
 */
const LINGER_MS = 500

/**
 * A lingering close (as Apache's): Node ends a `Connection: close` socket with `destroySoon`,
 * which closes it as soon as the answer is written. A body still arriving then meets a closed
 * socket, and the kernel answers it with a reset that reaches the client before (and instead
 * of) the answer. Here the write side is ended after the answer, the rest of the body is read
 * and dropped (Node's parser dumps it) until the client closes its side or `LINGER_MS` pass.
 */
function lingerOnClose(socket: Socket): void {
  socket.destroySoon = () => {
    if (socket.destroyed) return
    socket.end()
    const timer = setTimeout(() => socket.destroy(), LINGER_MS)
    timer.unref()
    socket.once('close', () => clearTimeout(timer))
    socket.once('end', () => socket.destroy())
    socket.resume()
  }
}

/** Whether the head announces a body (Node has validated the two headers). */
function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length']
  return (
    request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
  )
}

function isStreamedBody(request: FastifyRequest): boolean {
  return (request.routeOptions.config as { readonly streamedBody?: unknown }).streamedBody === true
}

/** How often a bound of `ms` is checked: a quarter of it, within 5 ms to 1 s. */
function checkEvery(ms: number): number {
  return Math.max(5, Math.min(1000, Math.floor(ms / 4)))
}
