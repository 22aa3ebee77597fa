import type { RunnerRuntime } from '../../domain/serving-plan.js'
import type { Launched, RunnerLauncher, RunnerLimits } from '../local/runner-launcher.js'
import {
  attachRunner,
  type ContainerRunnerOptions,
  imageMissing,
  OWNER_LABEL,
  RUNNER_PIDS_LIMIT,
  RUNNER_PORT,
  runnerIdentity,
} from '../runner-containers.js'
import { ContainerHost } from './container-host.js'
import type { DockerEngine } from './docker-engine.js'

export interface ContainerLauncherOptions extends ContainerRunnerOptions {
  readonly engine: DockerEngine
}

/**
 * Runners as containers of this node's Docker engine (`BERTH_SCHEDULER=docker`): one per runner,
 * from the runtime image its model needs, with the deployment's memory limit (enforced by the
 * kernel), CPU quota and GPUs, the installed models mounted read-only, its runner port published
 * on 127.0.0.1 only, and a token of its own that berth says in its `hello`. A container is
 * removed once its runner has ended; on start, the containers an earlier server left are removed.
 */
export class ContainerLauncher implements RunnerLauncher {
  readonly #options: ContainerLauncherOptions

  constructor(options: ContainerLauncherOptions) {
    this.#options = options
  }

  async launch(
    runtime: RunnerRuntime,
    limits: RunnerLimits | undefined,
    log: (line: string) => void,
  ): Promise<Launched> {
    const { engine } = this.#options
    const deadline = performance.now() + this.#options.startTimeoutMs
    const runner = runnerIdentity(this.#options, runtime)
    // berth never pulls: a runtime image the engine lacks is the runtime missing.
    if (!(await engine.hasImage(runner.image))) throw imageMissing(runtime, runner.image)
    const id = await engine.create({
      name: runner.name,
      image: runner.image,
      cmd: [...runner.command],
      user: runner.user,
      env: runner.env,
      labels: runner.labels,
      ...(limits === undefined
        ? {}
        : { memoryBytes: limits.memoryBytes, cpus: limits.cpus, gpus: limits.gpus }),
      binds: this.#options.readOnlyPaths.map((path) => `${path}:${path}:ro`),
      ...(this.#options.scratch === undefined ? {} : { scratch: this.#options.scratch }),
      publish: { port: RUNNER_PORT, hostIp: '127.0.0.1' },
      locked: { pidsLimit: RUNNER_PIDS_LIMIT },
    })
    try {
      await engine.start(id)
      // What the runner prints reaches the server's log, as a runner process's output does.
      void engine.followLogs(id, log)
      const state = await engine.inspect(id)
      const port = state?.publishedPort
      if (state === undefined || port === undefined) {
        throw new Error('the runner container has no published port')
      }
      const host = new ContainerHost(engine, id, this.#options.killGraceMs, state.pid)
      const address = { host: '127.0.0.1', port }
      const worker = await attachRunner(host, address, runner.token, deadline, this.#options, log)
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
