import { rm } from 'node:fs/promises'
import { Writable } from 'node:stream'
import type { LightMyRequestResponse } from 'fastify'
import { type App, createApp } from '../../src/app.js'
import type { Config } from '../../src/config/config.js'
import { loadConfig } from '../../src/config/load-config.js'
import { createLogger } from '../../src/observability/logger.js'
import { RUNTIME_IMAGE_ONNX, RUNTIME_IMAGE_TORCH } from './docker.js'
import { tempDir } from './temp-dir.js'

export const BOOTSTRAP_KEY = 'sk_test_bootstrap_key_0123456789abcdef'

export interface TestApp {
  readonly app: App
  readonly config: Config
  readonly dataDir: string
  /** Every log line the app wrote, as text. */
  logs(): string
  request(options: {
    method: 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH'
    url: string
    key?: string | undefined
    body?: unknown
    headers?: Record<string, string>
  }): Promise<LightMyRequestResponse>
  /** Stops the app and removes its data dir. */
  close(): Promise<void>
  /** Stops the app, keeping its data dir (for a restart on the same data). */
  stop(): Promise<void>
}

/**
 * The real app on real SQLite in a temp dir, logging at debug into memory. `env` adds or
 * overrides variables; the bootstrap key is `BOOTSTRAP_KEY` unless `env` unsets it. With
 * `BERTH_TEST_SCHEDULER=docker` or `swarm` in the test's environment its runners run in
 * containers of the engine at DOCKER_HOST, from BERTH_TEST_RUNTIME_IMAGE_ONNX (and _TORCH): how
 * CI runs the serving, lifecycle and real-model suites a second time, against real containers.
 */
export async function startTestApp(env: Record<string, string | undefined> = {}): Promise<TestApp> {
  const dir = await tempDir()
  const config = loadConfig({
    // The process's own environment but berth's variables, as `berth serve` would see it
    // (runners get their allowed part of it: the math libraries' settings change their results).
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BERTH_'))),
    BERTH_DATA_DIR: dir.path,
    BERTH_BOOTSTRAP_API_KEY: BOOTSTRAP_KEY,
    ...containerScheduler(),
    ...env,
  })
  const lines: string[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk))
      done()
    },
  })
  const app = await createApp(config, { logger: createLogger('debug', { destination: sink }) })
  return {
    app,
    config,
    dataDir: config.dataDir,
    logs: () => lines.join(''),
    request: ({ method, url, key, body, headers = {} }) =>
      app.server.inject({
        method,
        url,
        headers: { ...(key === undefined ? {} : { authorization: `Bearer ${key}` }), ...headers },
        ...(body === undefined ? {} : { payload: body as object }),
      }),
    close: async () => {
      await app.close()
      await dir.remove()
      await rm(config.dataDir, { recursive: true, force: true })
    },
    stop: () => app.close(),
  }
}

/** The scheduler `BERTH_TEST_SCHEDULER` asks for, as berth's variables; none when unset. */
function containerScheduler(): Record<string, string> {
  const driver = process.env.BERTH_TEST_SCHEDULER
  if (driver === undefined || driver === '' || driver === 'local') return {}
  const host = process.env.DOCKER_HOST
  if (host === undefined) throw new Error(`BERTH_TEST_SCHEDULER=${driver} needs DOCKER_HOST`)
  const images = {
    BERTH_RUNTIME_IMAGE_ONNX: RUNTIME_IMAGE_ONNX,
    BERTH_RUNTIME_IMAGE_TORCH: RUNTIME_IMAGE_TORCH,
  }
  return { BERTH_SCHEDULER: driver, BERTH_DOCKER_HOST: host, ...images }
}
