import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { TestApp } from './test-app.js'

/** Listens the test app on 127.0.0.1, a free port; resolves the port. */
export async function listenLocally(t: TestApp): Promise<number> {
  await t.app.server.listen({ host: '127.0.0.1', port: 0 })
  const address = t.app.server.server.address()
  if (typeof address !== 'object' || address === null) throw new Error('not listening on TCP')
  return address.port
}

/** An HTTP response as read off the wire. */
export interface RawResponse {
  readonly status: number
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/**
 * A plain TCP connection to the server, for what an HTTP client would never send: heads and bodies
 * written by hand, trickled, cut short or left hanging. Records what the server sends back and
 * when it closes the connection.
 */
export class RawConnection {
  readonly #socket: Socket
  readonly #opened = performance.now()
  #received = Buffer.alloc(0)
  #closedAt: number | undefined
  readonly #closed: Promise<void>

  private constructor(socket: Socket) {
    this.#socket = socket
    socket.on('data', (chunk: Buffer) => {
      this.#received = Buffer.concat([this.#received, chunk])
    })
    // A reset after the server closed (bytes still in flight) is the same end for these tests.
    socket.on('error', () => undefined)
    this.#closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.#closedAt = performance.now()
        resolve()
      })
    })
  }

  static async open(port: number): Promise<RawConnection> {
    const socket = connect(port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return new RawConnection(socket)
  }

  /** Writes unless the connection is gone; resolves whether it was written. */
  write(data: string | Buffer): boolean {
    if (this.isClosed || this.#socket.writableEnded) return false
    this.#socket.write(data)
    return true
  }

  /** Sends `data` in pieces of `size` bytes, one every `everyMs`, until done or closed. */
  async trickle(data: string | Buffer, size: number, everyMs: number): Promise<void> {
    const bytes = Buffer.from(data)
    for (let at = 0; at < bytes.length; at += size) {
      if (!this.write(bytes.subarray(at, at + size))) return
      await sleep(everyMs)
    }
  }

  /** Ends the client's side (FIN): the server sees the request end where it is. */
  end(): void {
    this.#socket.end()
  }

  destroy(): void {
    this.#socket.destroy()
  }

  get isClosed(): boolean {
    return this.#closedAt !== undefined
  }

  /** Milliseconds from opening to the server closing the connection; undefined while open. */
  get closedAfterMs(): number | undefined {
    return this.#closedAt === undefined ? undefined : this.#closedAt - this.#opened
  }

  /** Resolves true once the connection is closed, false if it is still open after `withinMs`. */
  async closed(withinMs: number): Promise<boolean> {
    await Promise.race([this.#closed, sleep(withinMs)])
    return this.isClosed
  }

  /** Waits up to `withinMs` for one whole response (a `Content-Length` body) and parses it. */
  async response(withinMs = 5000): Promise<RawResponse> {
    const until = performance.now() + withinMs
    for (;;) {
      const parsed = parseResponse(this.#received)
      if (parsed !== undefined) return parsed
      if (this.isClosed || performance.now() > until) {
        throw new Error(`no whole response; received: ${JSON.stringify(this.#received.toString())}`)
      }
      await sleep(10)
    }
  }

  /** Everything the server sent so far, as text. */
  received(): string {
    return this.#received.toString()
  }
}

function parseResponse(bytes: Buffer): RawResponse | undefined {
  const headEnd = bytes.indexOf('\r\n\r\n')
  if (headEnd < 0) return undefined
  const [statusLine = '', ...lines] = bytes.subarray(0, headEnd).toString('latin1').split('\r\n')
  const status = Number(statusLine.split(' ')[1])
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const length = Number(headers['content-length'] ?? 0)
  const body = bytes.subarray(headEnd + 4)
  if (body.length < length) return undefined
  return { status, headers, body: body.subarray(0, length).toString() }
}
