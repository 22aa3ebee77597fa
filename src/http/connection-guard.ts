import type { ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import { clientErrorOf, rawErrorResponse } from './error-handler.js'

/** Fastify's options that answer what Node's parser refuses. */
export interface ConnectionOptions {
  readonly clientErrorHandler: (err: Error, socket: Socket) => void
}

/**
 * What a connection answers when the server gives up on its client: whatever Node's parser
 * refuses (a head too large or too slow, a bad request line, a lying or unreadable
 * `Content-Length`) is answered in the error envelope, with `Connection: close`.
 */
export class ConnectionGuard {
  readonly #log: FastifyBaseLogger
  /** The latest response on each connection: a parser error never writes into one under way. */
  readonly #responses = new WeakMap<Socket, ServerResponse>()

  constructor(log: FastifyBaseLogger) {
    this.#log = log
  }

  /** To spread into Fastify's options. */
  serverOptions(): ConnectionOptions {
    return { clientErrorHandler: (err, socket) => this.#clientError(err, socket) }
  }

  /** Keeps track of the response on each connection. */
  install(app: FastifyInstance): void {
    app.addHook('onRequest', (request, reply, done) => {
      const socket = connectionOf(request)
      if (socket !== undefined) this.#responses.set(socket, reply.raw)
      done()
    })
  }

  #clientError(err: Error & { code?: unknown }, socket: Socket): void {
    // A reset, or a connection already closed: nobody to answer.
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
