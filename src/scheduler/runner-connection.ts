import { connect, type Socket } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { BerthError } from '../errors/berth-error.js'
import type { RunnerAddress } from '../runtime/runner-listener.js'
import { writeFrame } from '../runtime/worker-protocol.js'

/** How often a runner that does not listen yet is tried again. */
const RETRY_MS = 50

/**
 * Connects to a runner listening at `address` (it may still be starting: refused or closed
 * connections are tried again until `timeoutMs`), says `hello` with its token, and resolves the
 * channel once the runner answers, its `started` unread, for `WorkerProcess.attach`. Throws
 * `runner_start_timeout` when it never answers in time.
 */
export async function connectRunner(
  address: RunnerAddress,
  token: string,
  timeoutMs: number,
): Promise<Socket> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    try {
      const socket = await open(address)
      socket.setNoDelay(true)
      writeFrame(socket, { type: 'hello', id: 0, token })
      // A port a container publishes is taken by the engine's proxy at once, which closes the
      // connection when nothing listens inside yet: the runner is there once it answers.
      if (await answers(socket, deadline - performance.now())) return socket
      socket.destroy()
      if (performance.now() + RETRY_MS > deadline) throw closedError()
      await delay(RETRY_MS)
    } catch (err) {
      if (err instanceof BerthError) throw err
      const code = (err as NodeJS.ErrnoException).code
      const notYet = code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'ECONNRESET'
      if (!notYet || performance.now() + RETRY_MS > deadline) {
        throw new BerthError('runner_start_timeout', 'the runner did not listen in time', {
          details: { reason: code ?? String(err) },
        })
      }
      await delay(RETRY_MS)
    }
  }
}

/**
 * Whether the runner sends something (its `started`) before the connection closes or `ms` pass;
 * what it sent stays unread, for the protocol client.
 */
function answers(socket: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (answered: boolean) => {
      clearTimeout(timer)
      socket.off('readable', onReadable)
      socket.off('close', onClose)
      socket.off('error', onClose)
      resolve(answered)
    }
    const onReadable = () => done(socket.readableLength > 0)
    const onClose = () => done(false)
    const timer = setTimeout(() => done(false), Math.max(0, ms))
    socket.on('readable', onReadable)
    socket.once('close', onClose)
    socket.once('error', onClose)
  })
}

function closedError(): BerthError {
  return new BerthError('runner_start_timeout', 'the runner did not answer in time', {
    details: { reason: 'closed' },
  })
}

function open(address: RunnerAddress): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket =
      address.kind === 'unix' ? connect(address.path) : connect(address.port, address.host)
    socket.once('connect', () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}
