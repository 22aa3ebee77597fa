import type { RunnerHost, WorkerExit } from '../local/worker-process.js'
import type { DockerEngine } from './docker-engine.js'

/**
 * A runner in a container, as the runner protocol's client sees it: asked to stop with
 * `docker stop` (SIGTERM, then SIGKILL after the grace), killed with `docker kill`, ended when the
 * engine says the container has exited. Whether the kernel killed it for its memory limit is the
 * engine's `OOMKilled` flag, read once it has exited (`oomKilled`).
 */
export class ContainerHost implements RunnerHost {
  readonly #engine: DockerEngine
  readonly #graceS: number
  readonly id: string
  readonly exited: Promise<WorkerExit>
  /** Whether the kernel killed it for passing its memory limit; known once it has exited. */
  readonly oomKilled: Promise<boolean>
  readonly #pid: number | undefined
  #running = true

  /** `pid`: its first process's pid on this host (the engine's `State.Pid`), when known. */
  constructor(engine: DockerEngine, id: string, graceMs: number, pid?: number) {
    this.#engine = engine
    this.#graceS = Math.max(1, Math.ceil(graceMs / 1000))
    this.id = id
    this.#pid = pid !== undefined && pid > 0 ? pid : undefined
    const ended = engine.wait(id).catch(() => -1)
    const exit = ended.then(async (code) => {
      const oomKilled = (await engine.inspect(id).catch(() => undefined))?.oomKilled === true
      return { code, signal: code === 137 ? ('SIGKILL' as const) : null, oomKilled }
    })
    this.oomKilled = exit.then((e) => e.oomKilled)
    this.exited = exit.then((e) => {
      this.#running = false
      return e
    })
  }

  /**
   * Its first process on this host, so its resident memory can be read as a child process's is;
   * `undefined` where the engine runs elsewhere.
   */
  get pid(): number | undefined {
    return this.#pid
  }

  get running(): boolean {
    return this.#running
  }

  terminate(): void {
    void this.#engine.stop(this.id, this.#graceS).catch(() => undefined)
  }

  kill(): void {
    void this.#engine.kill(this.id).catch(() => undefined)
  }
}
