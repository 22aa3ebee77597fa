import { createHash, randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import type { RunnerRuntime } from '../../domain/serving-plan.js'
import { BerthError } from '../../errors/berth-error.js'
import type {
  Launched,
  RunnerLauncher,
  RunnerLimits,
  RunnerProtocolOptions,
} from '../local/runner-launcher.js'
import { WorkerProcess } from '../local/worker-process.js'
import { connectRunner } from '../runner-connection.js'
import { ContainerHost } from './container-host.js'
import type { DockerEngine } from './docker-engine.js'

/** The port a containerized runner listens on, inside its container. */
const RUNNER_PORT = 7070

/** The label that ties a container to the berth server (its data dir) that made it. */
export const OWNER_LABEL = 'berth.owner'

export interface ContainerLauncherOptions extends RunnerProtocolOptions {
  readonly engine: DockerEngine
  /** Which server's runners these are: a stable id of its data dir, on every container's label. */
  readonly owner: string
  /** The runtime image of each runtime (berth-runtime-onnx, berth-runtime-torch). */
  readonly image: (runtime: RunnerRuntime) => string
  /** The runner's command in that image; berth's own runners unless said (tests). */
  readonly command?: (runtime: RunnerRuntime) => readonly string[]
  /** Host folders the runner reads, mounted read-only at the same path: the installed models. */
  readonly readOnlyPaths: readonly string[]
}

/** berth's runners as the runtime images hold them (their working directory is the package). */
export function runnerCommand(runtime: RunnerRuntime): readonly string[] {
  if (runtime === 'torch') return ['python3', 'python/torch_worker.py']
  return ['node', 'dist/runtime/worker-main.js', runtime]
}

/**
 * Runners as containers of this node's Docker engine (`BERTH_SCHEDULER=docker`): one per runner,
 * from the runtime image its model needs, with the deployment's memory limit (enforced by the
 * kernel) and CPU quota, the installed models mounted read-only, its runner port published on
 * 127.0.0.1 only, and a token of its own that berth says in its `hello`. A container is removed
 * once its runner has ended; on start, the containers an earlier server left are removed.
 */
export class ContainerLauncher implements RunnerLauncher {
  readonly #options: ContainerLauncherOptions
  /** Runtime images the engine was seen to hold. */
  readonly #images = new Set<string>()

  constructor(options: ContainerLauncherOptions) {
    this.#options = options
  }

  async launch(
    runtime: RunnerRuntime,
    limits: RunnerLimits | undefined,
    log: (line: string) => void,
  ): Promise<Launched> {
    const { engine, owner } = this.#options
    const image = this.#options.image(runtime)
    // berth never pulls: a runtime image the engine lacks is the runtime missing.
    if (!this.#images.has(image)) {
      if (!(await engine.hasImage(image))) throw imageMissing(runtime, image)
      this.#images.add(image)
    }
    const token = randomBytes(32).toString('hex')
    const id = await engine.create({
      name: `berth-runner-${randomBytes(8).toString('hex')}`,
      image,
      cmd: [...(this.#options.command ?? runnerCommand)(runtime)],
      // The server's own user: the model files it wrote (mode 0600 and 0700) are its alone.
      user: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`,
      env: {
        ...this.#options.runnerEnv,
        BERTH_RUNNER_LISTEN: `tcp:0.0.0.0:${RUNNER_PORT}`,
        BERTH_RUNNER_TOKEN: token,
      },
      labels: { [OWNER_LABEL]: owner, 'berth.runtime': runtime },
      ...(limits === undefined ? {} : { memoryBytes: limits.memoryBytes, cpus: limits.cpus }),
      binds: this.#options.readOnlyPaths.map((path) => `${path}:${path}:ro`),
      publish: { port: RUNNER_PORT, hostIp: '127.0.0.1' },
    })
    try {
      await engine.start(id)
      const state = await engine.inspect(id)
      const port = state?.publishedPort
      if (state === undefined || port === undefined) {
        throw new Error('the runner container has no published port')
      }
      const host = new ContainerHost(engine, id, this.#options.killGraceMs, state.pid)
      const channel = await connectRunner(
        { kind: 'tcp', host: '127.0.0.1', port },
        token,
        this.#options.startTimeoutMs,
      )
      const worker = await WorkerProcess.attach(host, channel, {
        startTimeoutMs: this.#options.startTimeoutMs,
        killGraceMs: this.#options.killGraceMs,
        maxFrameBytes: this.#options.maxFrameBytes,
        ...(this.#options.ping === undefined ? {} : { ping: this.#options.ping }),
        log,
      })
      return { worker, cleaned: host.exited.then(() => engine.remove(id)) }
    } catch (err) {
      await engine.remove(id).catch(() => undefined)
      throw err
    }
  }

  /** Removes every container an earlier server of this data dir left. */
  async endLeftovers(): Promise<number> {
    const { engine, owner } = this.#options
    const left = await engine.list(OWNER_LABEL, owner)
    for (const id of left) await engine.remove(id)
    return left.length
  }
}

/** `runtime_unavailable`: the engine lacks the runtime image a runner needs, and how to build it. */
export function imageMissing(runtime: RunnerRuntime, image: string): BerthError {
  const dockerfile = runtime === 'torch' ? 'runtime-torch' : 'runtime-onnx'
  return new BerthError(
    'runtime_unavailable',
    `the container engine has no image ${image} for the ${runtime} runtime: build it from berth's source with docker build -f docker/${dockerfile}.Dockerfile -t ${image} . (or load it), or name another in BERTH_RUNTIME_IMAGE_${runtime === 'torch' ? 'TORCH' : 'ONNX'}`,
  )
}

/** The owner label of one data dir's runners, whatever else the engine runs: what a restart removes. */
export function ownerOf(dataDir: string): string {
  return createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 16)
}
