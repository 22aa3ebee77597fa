import type { DockerEngine } from '../docker/docker-engine.js'
import type { RunnerHost, WorkerExit } from '../local/worker-process.js'
import type { SwarmEngine, TaskState } from './swarm-engine.js'

/** What a service host needs to learn that its task has ended: the launcher's one watch. */
export interface TaskWatch {
  /** Resolves with the task's last state once it has ended or its service is gone. */
  ended(taskId: string): Promise<TaskState | undefined>
  /** Stops watching a task whose end no longer matters (resolving nothing). */
  forget(taskId: string): void
}

/**
 * A runner in a Swarm task (a service of one task), as the runner protocol's client sees it:
 * asked to stop by removing its service (the engine sends SIGTERM, then SIGKILL after the stop
 * grace), ended when the engine says its task has ended. On this engine's own node the task's
 * container is known too: its pid (resident memory is read like a child's) and, once it has
 * exited, the kernel's OOM flag; a task on another node has neither.
 */
export class ServiceHost implements RunnerHost {
  readonly #swarm: SwarmEngine
  readonly #local: DockerEngine | undefined
  readonly #serviceId: string
  readonly #task: TaskState
  readonly exited: Promise<WorkerExit>
  readonly #killGraceMs: number
  #given: (() => void) | undefined
  #running = true

  /**
   * `local`: this node's engine, when the task runs on it. `killGraceMs`: how long after a kill
   * the runner counts as ended even if the engine never says so (an engine out of reach must not
   * hold a shutdown forever).
   */
  constructor(
    swarm: SwarmEngine,
    watch: TaskWatch,
    serviceId: string,
    task: TaskState,
    options: { readonly local: DockerEngine | undefined; readonly killGraceMs: number },
  ) {
    const { local } = options
    this.#swarm = swarm
    this.#local = local
    this.#serviceId = serviceId
    this.#task = task
    this.#killGraceMs = options.killGraceMs
    const givenUp = new Promise<undefined>((resolve) => {
      this.#given = () => {
        watch.forget(task.id)
        resolve(undefined)
      }
    })
    this.exited = Promise.race([watch.ended(task.id), givenUp]).then(async (last) => {
      const container = task.containerId
      const oomKilled =
        local !== undefined && container !== undefined
          ? (await local.inspect(container).catch(() => undefined))?.oomKilled === true
          : false
      this.#running = false
      const code = last?.exitCode ?? null
      return { code, signal: code === 137 ? ('SIGKILL' as const) : null, oomKilled }
    })
  }

  get pid(): number | undefined {
    const pid = this.#task.pid
    return this.#local !== undefined && pid !== undefined && pid > 0 ? pid : undefined
  }

  get running(): boolean {
    return this.#running
  }

  terminate(): void {
    void this.#swarm.removeService(this.#serviceId).catch(() => undefined)
  }

  kill(): void {
    const given = this.#given
    if (given !== undefined) setTimeout(given, this.#killGraceMs).unref()
    this.#given = undefined
    const container = this.#task.containerId
    // On this node the container is killed and kept until its end is known (the kernel's OOM
    // flag is read from it, and the launcher removes the service after); elsewhere removing the
    // service is the only way to end it.
    if (this.#local !== undefined && container !== undefined) {
      void this.#local.kill(container).catch(() => undefined)
    } else {
      void this.#swarm.removeService(this.#serviceId).catch(() => undefined)
    }
  }
}
