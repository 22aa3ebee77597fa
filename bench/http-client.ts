import { Agent, request } from 'node:http'

export interface HttpAnswer {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: Buffer
}

/**
 * A keep-alive HTTP client to one local server, for the benchmarks: node:http with an agent of
 * `sockets` connections (so concurrency is the caller's), whole bodies in and out.
 */
export function httpClient(port: number, sockets: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets })
  const call = (
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    headers: Record<string, string> = {},
    body?: Buffer,
  ) =>
    new Promise<HttpAnswer>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method,
          agent,
          headers:
            body === undefined ? headers : { ...headers, 'content-length': String(body.length) },
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
            }),
          )
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  return {
    get: (path: string, headers?: Record<string, string>) => call('GET', path, headers),
    post: (path: string, body: Buffer, headers: Record<string, string>) =>
      call('POST', path, headers, body),
    delete: (path: string, headers?: Record<string, string>) => call('DELETE', path, headers),
    close: () => agent.destroy(),
  }
}

/** Throws unless the answer is a 200. */
export function expectOk(answer: HttpAnswer): HttpAnswer {
  if (answer.status !== 200) throw new Error(`status ${answer.status}: ${answer.body.toString()}`)
  return answer
}
