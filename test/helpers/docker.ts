import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DataDirLock } from '../../src/data-dir-lock.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import { DockerEngine } from '../../src/scheduler/docker/docker-engine.js'
import { RUNNER_PIDS_LIMIT } from '../../src/scheduler/runner-containers.js'
import { SwarmEngine } from '../../src/scheduler/swarm/swarm-engine.js'
import { REPO_ROOT } from './repo.js'

/**
 * The Docker engine the container tests use, given by the environment (`.ci/run` starts a
 * private one with `.ci/engine.sh` and builds the offline base image with `.ci/base-image.sh`):
 *   DOCKER_HOST                    the engine (unset: the tests skip; they never guess one)
 *   BERTH_TEST_DOCKER_BASE_IMAGE   the images' BASE_IMAGE (default berth-base:bookworm, which
 *                                  .ci/base-image.sh builds); it must be in the engine already
 *   BERTH_TEST_DOCKER_CA_BUNDLE    a CA bundle in the repository for npm inside the builds
 *                                  (NPM_CA_BUNDLE), behind a TLS-intercepting proxy
 * Without an engine the tests skip with the reason printed, unless BERTH_TEST_REQUIRE_DOCKER=1
 * (CI), where they fail instead.
 */
export interface DockerForTests {
  readonly baseImage: string
  /** `--build-arg` pairs every build passes. */
  readonly buildArgs: readonly string[]
}

/** Debian's client matches its daemon's API; elsewhere the one on the PATH. */
const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker'

function skipOrFail(reason: string): { skip: string } {
  if (process.env.BERTH_TEST_REQUIRE_DOCKER === '1') {
    throw new Error(`a Docker engine is required (BERTH_TEST_REQUIRE_DOCKER=1): ${reason}`)
  }
  console.warn(
    `SKIPPING container tests: ${reason} (start one with: eval "$(.ci/engine.sh start)" && .ci/base-image.sh)`,
  )
  return { skip: reason }
}

/** The ONNX runner image the container schedulers' tests run models in (`.ci/run` builds it). */
export const RUNTIME_IMAGE_ONNX =
  process.env.BERTH_TEST_RUNTIME_IMAGE_ONNX || 'berth-runtime-onnx:test'

/** The torch runner image, likewise. */
export const RUNTIME_IMAGE_TORCH =
  process.env.BERTH_TEST_RUNTIME_IMAGE_TORCH || 'berth-runtime-torch:test'

/** An engine the tests talk to through berth's own Engine API clients, holding `image`. */
export interface EngineForTests {
  readonly host: string
  readonly engine: DockerEngine
  readonly swarm: SwarmEngine
  readonly image: string
}

/**
 * The engine at DOCKER_HOST holding `image` (and a Swarm manager, with `swarm`), or why the
 * tests skip (they fail instead with BERTH_TEST_REQUIRE_DOCKER=1).
 */
export async function engineForTests(
  image: string,
  needs: { readonly swarm?: boolean } = {},
): Promise<EngineForTests | { skip: string }> {
  const host = process.env.DOCKER_HOST
  if (!host) return skipOrFail('DOCKER_HOST is not set')
  const engine = new DockerEngine(host)
  if (!(await engine.ping())) return skipOrFail(`no engine answers at ${host}`)
  if (!(await engine.hasImage(image))) return skipOrFail(`no image ${image} in the engine`)
  const swarm = new SwarmEngine(host)
  if (needs.swarm === true && !(await swarm.info()).manager) {
    return skipOrFail(`the engine at ${host} is not a Swarm manager`)
  }
  return { host, engine, swarm, image }
}

/** The engine and base image the tests may use, or why they skip. */
export async function dockerForTests(): Promise<DockerForTests | { skip: string }> {
  if (!process.env.DOCKER_HOST) return skipOrFail('DOCKER_HOST is not set')
  const version = await docker(['version', '--format', '{{.Server.Version}}'], {
    timeoutMs: 15_000,
  })
  if (version.code !== 0) {
    return skipOrFail(`no engine answers at ${process.env.DOCKER_HOST}: ${version.output.trim()}`)
  }
  const baseImage = process.env.BERTH_TEST_DOCKER_BASE_IMAGE || 'berth-base:bookworm'
  if ((await docker(['image', 'inspect', baseImage])).code !== 0) {
    return skipOrFail(`the base image ${baseImage} is not in the engine`)
  }
  const buildArgs = [`BASE_IMAGE=${baseImage}`]
  const ca = process.env.BERTH_TEST_DOCKER_CA_BUNDLE
  if (ca) buildArgs.push(`NPM_CA_BUNDLE=${ca}`)
  return { baseImage, buildArgs }
}

export interface DockerResult {
  readonly code: number
  /** stdout; stderr after it. */
  readonly output: string
  readonly stdout: string
}

/**
 * Runs the docker client to completion (`input` on its stdin). A run past `timeoutMs` is killed
 * and reports 124.
 */
export function docker(
  args: readonly string[],
  options: { input?: Buffer; timeoutMs?: number } = {},
): Promise<DockerResult> {
  return new Promise((resolve) => {
    const child = execFile(
      DOCKER,
      [...args],
      {
        cwd: REPO_ROOT,
        // The classic builder: BuildKit on Debian's engine warns that buildx is missing.
        env: { ...process.env, DOCKER_BUILDKIT: '0' },
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        const code =
          err === null ? 0 : err.killed ? 124 : typeof err.code === 'number' ? err.code : 1
        resolve({ code, stdout, output: `${stdout}${stderr}` })
      },
    )
    child.stdin?.end(options.input)
  })
}

/** Runs the docker client; throws with its output unless it succeeds. Resolves stdout. */
export async function dockerOk(
  args: readonly string[],
  options: { input?: Buffer; timeoutMs?: number } = {},
): Promise<string> {
  const result = await docker(args, options)
  if (result.code !== 0) {
    throw new Error(
      `docker ${args.join(' ')} exited ${result.code}:\n${result.output.slice(-4000)}`,
    )
  }
  return result.stdout
}

/** A tag no other run uses, for an image a test builds and removes. */
export function testTag(name: string): string {
  return `berth-test-${name}:${randomBytes(4).toString('hex')}`
}

/**
 * Builds `dockerfile` (repository-relative) with the repository as context, tagged `tag`.
 * Builds take minutes uncached (npm ci compiles better-sqlite3); cached layers make a
 * rebuild take seconds.
 */
export async function buildImage(
  engine: DockerForTests,
  dockerfile: string,
  tag: string,
  buildArgs: readonly string[] = [],
): Promise<void> {
  const args = ['build', '--file', dockerfile, '--tag', tag]
  for (const arg of [...engine.buildArgs, ...buildArgs]) args.push('--build-arg', arg)
  await dockerOk([...args, '.'], { timeoutMs: 15 * 60_000 })
}

/**
 * Removes the image's tag, keeping its layers: the next run's build of the same sources
 * is then cached (`.ci/engine.sh` prunes what no build has used for a week).
 */
export async function removeImage(tag: string): Promise<void> {
  await docker(['image', 'rm', '--no-prune', tag])
}

export interface HttpAnswer {
  readonly status: number
  readonly body: string
}

/**
 * One HTTP request with node's http and a timeout (fetch against a published port of a container
 * that is still starting was seen to hang without settling).
 */
export function httpRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
  timeoutMs = 30_000,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? 'GET', headers: options.headers, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        )
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer in ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(options.body)
  })
}

/** Polls `check` every `everyMs` until it holds; throws `what` after `timeoutMs`. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 500,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(everyMs)
  }
}

/**
 * A runner container holds untrusted work: no capabilities (nor new privileges, where the API
 * can say so), a read-only root, a process limit.
 */
export async function assertLocked(
  container: string,
  expect: { readonly noNewPrivileges: boolean },
): Promise<void> {
  const host = JSON.parse(
    await dockerOk(['inspect', '--format', '{{json .HostConfig}}', container]),
  ) as Record<string, unknown>
  assert.deepEqual(host.CapDrop, ['ALL'], 'no capabilities')
  assert.deepEqual(host.SecurityOpt ?? null, expect.noNewPrivileges ? ['no-new-privileges'] : null)
  assert.equal(host.ReadonlyRootfs, true, 'a read-only root')
  assert.equal(host.PidsLimit, RUNNER_PIDS_LIMIT)
}

/**
 * Holds the test engine's one Swarm node for this test file until the returned release: test
 * files run side by side, and one of them drains the node (its tasks then go nowhere, and a
 * server started meanwhile sees a swarm of no capacity). The data directory's own lock, on a
 * folder in the temp dir: taken over when its holder is gone.
 */
export async function holdSwarmNode(): Promise<() => Promise<void>> {
  for (;;) {
    try {
      const lock = await DataDirLock.acquire(join(tmpdir(), 'berth-test-swarm-node'))
      return () => lock.release()
    } catch (err) {
      if (!isBerthError(err, 'data_dir_locked')) throw err
      await sleep(200)
    }
  }
}
