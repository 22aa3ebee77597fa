import { connect, type Socket } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { BerthError } from '../errors/berth-error.js'
import type { RunnerAddress } from '../runtime/runner-listener.js'
import { writeFrame } from '../runtime/worker-protocol.js'

/** How often a runner that does not listen yet is tried again. */
const RETRY_MS = 50

/**
 * Connects to a runner listening at `address` (it may still be starting: refused connections
 * are tried again until `timeoutMs`), and says `hello` with its token. Resolves the channel,
 * for `WorkerProcess.attach`, which waits for the runner's `started`. Throws
 * `runner_start_timeout` when it never listens in time.
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
      return socket
    } catch (err) {
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
