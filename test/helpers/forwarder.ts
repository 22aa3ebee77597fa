import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'

/** A TCP port that forwards every connection to another: one server under a second address. */
export interface Forwarder {
  readonly port: number
  close(): Promise<void>
}

/**
 * Listens on `host` (a free port) and pipes each connection to `target`. Tests use it where a
 * server must be reached under another address than its own: S3 signed for another host, or
 * reached from containers through the engine's bridge.
 */
export async function forwardTcp(
  host: string,
  target: { readonly host: string; readonly port: number },
): Promise<Forwarder> {
  const open = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host)
    for (const socket of [client, upstream]) {
      open.add(socket)
      socket.on('close', () => open.delete(socket))
    }
    client.pipe(upstream).pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, resolve)
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        for (const socket of open) socket.destroy()
      }),
  }
}
