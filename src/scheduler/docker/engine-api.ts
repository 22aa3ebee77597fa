import { request } from 'node:http'
import { BerthError } from '../../errors/berth-error.js'
import { LogLines } from './log-lines.js'

/**
 * The Docker Engine API over its Unix socket, as plain HTTP (node:http) rather than a client
 * library: the API is a small, stable, versioned REST surface, and the maintained Node client
 * (dockerode) brings gRPC, protobuf, SSH and tar dependencies for image builds and remote engines
 * that berth never uses (docs/decisions/0009-docker-engine-api-over-http.md). The container calls
 * (`DockerEngine`) and the Swarm calls (`SwarmEngine`) both go through it.
 */

/** The API version berth speaks: Docker 20.10's, which every later engine still serves. */
const API_VERSION = 'v1.41'

/** Longest JSON answer read from the engine (a container list of many thousands). */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024

/** How long a call may take before the engine counts as out of reach (not `wait`: it blocks). */
const CALL_TIMEOUT_MS = 30_000

export interface Answer {
  readonly status: number
  readonly body: unknown
}

/** An engine reached at `unix:///path/docker.sock` (DOCKER_HOST's form) or a socket path. */
export class EngineApi {
  readonly #socketPath: string

  constructor(host: string) {
    this.#socketPath = host.startsWith('unix://') ? host.slice('unix://'.length) : host
  }

  /** Whether the engine answers. */
  async ping(): Promise<boolean> {
    try {
      return (await this.call('GET', '/_ping')).status === 200
    } catch {
      return false
    }
  }

  /** Throws `container_engine_failed` unless the answer's status is one of `statuses`. */
  expect(answer: Answer, statuses: readonly number[], what: string): void {
    if (statuses.includes(answer.status)) return
    const message = (answer.body as { message?: unknown } | undefined)?.message
    throw new BerthError(
      'container_engine_failed',
      `the container engine refused to ${what}: ${typeof message === 'string' ? message : answer.status}`,
      { details: { status: answer.status } },
    )
  }

  /**
   * Follows a streamed answer (a container's logs) until the engine ends it, handing each chunk
   * to `onData`. The connection never keeps the process alive; a stream the engine refuses, or
   * whose connection breaks, just ends.
   */
  #follow(path: string, onData: (chunk: Buffer) => void): Promise<void> {
    return new Promise((resolve) => {
      const req = request(
        {
          socketPath: this.#socketPath,
          path: `/${API_VERSION}${path}`,
          headers: { host: 'docker' },
        },
        (res) => {
          if (res.statusCode !== 200) res.resume()
          else res.on('data', onData)
          res.on('close', () => resolve())
          res.on('error', () => resolve())
        },
      )
      req.on('socket', (socket) => socket.unref())
      req.on('error', () => resolve())
      req.end()
    })
  }

  /** Follows a container's log stream (`…/logs?follow=1`), handing on each whole line it prints. */
  async followLines(path: string, onLine: (line: string) => void): Promise<void> {
    const lines = new LogLines(onLine)
    await this.#follow(path, (chunk) => lines.push(chunk))
    lines.end()
  }

  /**
   * One call; `container_engine_unavailable` when the socket cannot be reached or the engine
   * does not answer within `timeoutMs` (0: no bound, for calls that block until an event).
   */
  call(method: string, path: string, body?: unknown, timeoutMs = CALL_TIMEOUT_MS): Promise<Answer> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.#socketPath,
          path: `/${API_VERSION}${path}`,
          method,
          headers: {
            host: 'docker',
            ...(payload === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': payload.length }),
          },
        },
        (res) => {
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (chunk: Buffer) => {
            size += chunk.length
            if (size > MAX_ANSWER_BYTES) res.destroy(new Error('answer too large'))
            else chunks.push(chunk)
          })
          res.on('error', (err) => reject(unavailable(err)))
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8')
            let parsed: unknown
            try {
              parsed = text === '' ? undefined : JSON.parse(text)
            } catch {
              parsed = { message: text.slice(0, 500) }
            }
            resolve({ status: res.statusCode ?? 0, body: parsed })
          })
        },
      )
      req.on('error', (err) => reject(unavailable(err)))
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)))
      }
      req.end(payload)
    })
  }
}

function unavailable(err: Error): BerthError {
  return new BerthError(
    'container_engine_unavailable',
    `the container engine cannot be reached: ${err.message}`,
    { cause: err },
  )
}
