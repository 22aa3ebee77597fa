import { OWNER_LABEL } from '../runner-containers.js'
import type { TaskWatch } from './service-host.js'
import { type SwarmEngine, type TaskState, taskEnded } from './swarm-engine.js'

/** How often the engine is asked how the tasks of live runners are. */
export const WATCH_MS = 500

/**
 * Learns when runners' tasks end, for all of one server's runners with one task list per tick
 * (however many runners): a task the engine says has ended, is being shut down, or that is gone
 * with its service. One look at a time, on a timer that never keeps the process alive; a tick
 * the engine does not answer is tried again at the next.
 */
export class TaskWatcher implements TaskWatch {
  readonly #swarm: SwarmEngine
  readonly #owner: string
  readonly #watched = new Map<string, Watched>()
  #timer: NodeJS.Timeout | undefined

  constructor(swarm: SwarmEngine, owner: string) {
    this.#swarm = swarm
    this.#owner = owner
  }

  ended(taskId: string): Promise<TaskState | undefined> {
    return new Promise((resolve) => {
      this.#watched.set(taskId, { since: performance.now(), last: undefined, resolve })
      this.#schedule()
    })
  }

  forget(taskId: string): void {
    this.#watched.delete(taskId)
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#watched.size === 0) return
    this.#timer = setTimeout(() => {
      void this.#poll().finally(() => {
        this.#timer = undefined
        this.#schedule()
      })
    }, WATCH_MS)
    this.#timer.unref()
  }

  async #poll(): Promise<void> {
    const started = performance.now()
    let tasks: Map<string, TaskState>
    try {
      const all = await this.#swarm.tasks({ label: `${OWNER_LABEL}=${this.#owner}` })
      tasks = new Map(all.map((t) => [t.id, t]))
    } catch {
      return
    }
    for (const [taskId, watched] of this.#watched) {
      const task = tasks.get(taskId)
      if (task !== undefined && !taskEnded(task)) {
        watched.last = task
        continue
      }
      // A list asked for before the watch began may not hold its task yet.
      if (task === undefined && started <= watched.since) continue
      this.#watched.delete(taskId)
      watched.resolve(task ?? watched.last)
    }
  }
}

interface Watched {
  /** When the watch began. */
  readonly since: number
  last: TaskState | undefined
  readonly resolve: (task: TaskState | undefined) => void
}
