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
  #running = true

  constructor(engine: DockerEngine, id: string, graceMs: number) {
    this.#engine = engine
    this.#graceS = Math.max(1, Math.ceil(graceMs / 1000))
    this.id = id
    const ended = engine.wait(id).catch(() => -1)
    this.exited = ended.then((code) => {
      this.#running = false
      return { code, signal: code === 137 ? 'SIGKILL' : null }
    })
    this.oomKilled = this.exited.then(async () => (await engine.inspect(id))?.oomKilled === true)
  }

  /** A container's process lives in the engine's namespace: berth has no pid of its own for it. */
  get pid(): number | undefined {
    return undefined
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
