import { timingSafeEqual } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { FrameDecoder, isToWorker, MAX_TOKEN_LENGTH, type ToWorker } from './worker-protocol.js'

/** Where a runner listens for berth: `tcp:HOST:PORT` or `unix:/path/to/socket`. */
export type RunnerAddress =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string }

/** How long a connection may take to say `hello` before it is closed. */
const HELLO_TIMEOUT_MS = 5_000

/** Reads `tcp:HOST:PORT` or `unix:/path`; `undefined` for anything else. */
export function parseRunnerAddress(text: string): RunnerAddress | undefined {
  if (text.startsWith('unix:') && text.length > 5) return { kind: 'unix', path: text.slice(5) }
  const tcp = /^tcp:(.+):(\d{1,5})$/.exec(text)
  const port = Number(tcp?.[2])
  if (tcp?.[1] === undefined || !(port >= 0 && port <= 65_535)) return undefined
  // `tcp:[::1]:7070`: a bracketed IPv6 host.
  return { kind: 'tcp', host: tcp[1].replace(/^\[(.*)\]$/, '$1'), port }
}

/** The address as `parseRunnerAddress` reads it. */
export function formatRunnerAddress(address: RunnerAddress): string {
  if (address.kind === 'unix') return `unix:${address.path}`
  const host = address.host.includes(':') ? `[${address.host}]` : address.host
  return `tcp:${host}:${address.port}`
}

/**
 * Listens at `address` until berth connects and says `hello` with `token`, then stops listening
 * and resolves that connection: the runner's channel. A connection that sends anything else, a
 * wrong token, or nothing within a few seconds is closed, and the runner listens on: a stranger
 * who can reach the port can neither drive the runner nor keep berth out. `onListening` gets the
 * address listened on (the port a `tcp:…:0` address was given). `waitMs`: berth not there by then
 * (it gave the start up, or could not remove what it started), the listening ends and this
 * rejects: a runner never waits for berth forever.
 */
export function acceptBerth(
  address: RunnerAddress,
  token: string,
  onListening: (bound: RunnerAddress) => void = () => undefined,
  waitMs?: number,
): Promise<Socket> {
  const expected = Buffer.from(token)
  return new Promise((resolve, reject) => {
    const deadline =
      waitMs === undefined
        ? undefined
        : setTimeout(() => {
            server.close()
            reject(new Error(`berth did not connect within ${waitMs} ms`))
          }, waitMs)
    const server: Server = createServer((socket) => {
      const decoder = new FrameDecoder(isToWorker, 2 * MAX_TOKEN_LENGTH)
      const timer = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS)
      const onData = (chunk: Buffer) => {
        let first: ToWorker | undefined
        try {
          first = decoder.push(chunk)[0]
        } catch {
          socket.destroy()
          return
        }
        if (first === undefined) return // the frame is not whole yet
        clearTimeout(timer)
        socket.off('data', onData)
        if (first.type !== 'hello' || !sameToken(Buffer.from(first.token), expected)) {
          socket.destroy()
          return
        }
        clearTimeout(deadline)
        server.close()
        resolve(socket)
      }
      socket.on('data', onData)
      socket.on('error', () => clearTimeout(timer))
      socket.on('close', () => clearTimeout(timer))
    })
    server.on('error', reject)
    const listening = () => {
      const bound = server.address()
      if (address.kind === 'tcp' && typeof bound === 'object' && bound !== null) {
        onListening({ kind: 'tcp', host: address.host, port: bound.port })
      } else onListening(address)
    }
    if (address.kind === 'unix') {
      // A socket file left by an earlier runner on the same path would refuse the listen.
      rm(address.path, { force: true }).then(() => server.listen(address.path, listening), reject)
    } else server.listen(address.port, address.host, listening)
  })
}

/** Compares tokens in time that does not depend on where they differ. */
function sameToken(given: Buffer, expected: Buffer): boolean {
  return given.length === expected.length && timingSafeEqual(given, expected)
}
