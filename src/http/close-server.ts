import type { FastifyInstance } from 'fastify'

/** Fastify's close waits for in-flight requests; past the bound, open connections are cut. */
export async function closeServer(server: FastifyInstance, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs)
    timer.unref()
  })
  const closed = server.close().then(() => 'closed' as const)
  if ((await Promise.race([closed, deadline])) === 'timeout') {
    server.log.warn({ timeoutMs }, 'shutdown: in-flight requests did not finish in time')
    server.server.closeAllConnections()
    await closed
  }
  clearTimeout(timer)
}
