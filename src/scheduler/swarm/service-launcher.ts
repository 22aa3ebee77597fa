import { randomBytes } from 'node:crypto'
import type { RunnerRuntime } from '../../domain/serving-plan.js'
import { BerthError, isBerthError } from '../../errors/berth-error.js'
import { imageMissing, OWNER_LABEL, runnerCommand } from '../docker/container-launcher.js'
import type { DockerEngine } from '../docker/docker-engine.js'
import type {
  Launched,
  RunnerLauncher,
  RunnerLimits,
  RunnerProtocolOptions,
} from '../local/runner-launcher.js'
import { WorkerProcess } from '../local/worker-process.js'
import { connectRunner } from '../runner-connection.js'
import { ServiceHost, type TaskWatch } from './service-host.js'
import { type SwarmEngine, type TaskState, taskEnded } from './swarm-engine.js'

/** The port a runner listens on inside its task's container. */
const RUNNER_PORT = 7070

/** How often the engine is asked how the tasks of live runners are. */
const WATCH_MS = 500

export interface ServiceLauncherOptions extends RunnerProtocolOptions {
  readonly swarm: SwarmEngine
  /** This node's engine (the manager berth talks to), for the tasks it runs itself. */
  readonly local: DockerEngine
  /** This engine's own Swarm node id. */
  readonly localNodeId: string
  /** Which server's runners these are: on every service's label, what a restart removes. */
  readonly owner: string
  readonly image: (runtime: RunnerRuntime) => string
  /** The runner's command in that image; berth's own runners unless said (tests). */
  readonly command?: (runtime: RunnerRuntime) => readonly string[]
  /** Folders mounted read-only at the same path in every task: on every node, the same files. */
  readonly readOnlyPaths: readonly string[]
  /**
   * How far reserved CPUs may exceed the swarm's (`BERTH_CPU_OVERCOMMIT`): a runner is placed by
   * `num_cpus / cpuOvercommit` CPUs, and its quota is `num_cpus`, as the `local` scheduler shares
   * cores. Memory is reserved whole.
   */
  readonly cpuOvercommit: number
}

/**
 * Runners as Swarm services (`BERTH_SCHEDULER=swarm`): one service of one task per runner, from
 * the runtime image its model needs. The engine places the task on a node with room for its
 * reservation (the deployment's `num_cpus` and `memory_gb`, which are its limits too, enforced
 * by the node's kernel); its runner port is published in host mode on that node (the routing
 * mesh is never used), and berth connects to the node's address with the runner's own token. The
 * service restarts nothing itself: a runner that ends (a crash, an OOM kill, its node drained or
 * lost) is replaced by berth's restart policy with a new service, which the engine places on a
 * node that can take it.
 */
export class ServiceLauncher implements RunnerLauncher, TaskWatch {
  readonly #options: ServiceLauncherOptions
  readonly #watched = new Map<string, Watched>()
  #timer: NodeJS.Timeout | undefined

  constructor(options: ServiceLauncherOptions) {
    this.#options = options
  }

  async launch(
    runtime: RunnerRuntime,
    limits: RunnerLimits | undefined,
    log: (line: string) => void,
  ): Promise<Launched> {
    const { swarm, owner, startTimeoutMs } = this.#options
    const token = randomBytes(32).toString('hex')
    const deadline = performance.now() + startTimeoutMs
    const serviceId = await swarm.createService({
      name: `berth-runner-${randomBytes(8).toString('hex')}`,
      image: this.#options.image(runtime),
      args: [...(this.#options.command ?? runnerCommand)(runtime)],
      user: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`,
      env: {
        ...this.#options.runnerEnv,
        BERTH_RUNNER_LISTEN: `tcp:0.0.0.0:${RUNNER_PORT}`,
        BERTH_RUNNER_TOKEN: token,
      },
      labels: { [OWNER_LABEL]: owner, 'berth.runtime': runtime },
      readOnlyPaths: this.#options.readOnlyPaths,
      ...(limits === undefined
        ? {}
        : {
            memoryBytes: limits.memoryBytes,
            cpus: limits.cpus,
            reservedCpus: limits.cpus / this.#options.cpuOvercommit,
          }),
      port: RUNNER_PORT,
      stopGraceMs: this.#options.killGraceMs,
    })
    try {
      const task = await this.#running(serviceId, deadline).catch((err: unknown) => {
        // A node without the image rejects the task (berth never has the engine pull).
        if (isBerthError(err, 'runner_crashed') && /No such image/i.test(err.message)) {
          throw imageMissing(runtime, this.#options.image(runtime))
        }
        throw err
      })
      const node = (await swarm.nodes()).find((n) => n.id === task.nodeId)
      const address = node === undefined || node.addr === '0.0.0.0' ? '127.0.0.1' : node.addr
      const local = task.nodeId === this.#options.localNodeId ? this.#options.local : undefined
      const host = new ServiceHost(swarm, this, serviceId, task, local)
      const channel = await connectRunner(
        { kind: 'tcp', host: address, port: task.publishedPort as number },
        token,
        Math.max(1, deadline - performance.now()),
      )
      const worker = await WorkerProcess.attach(host, channel, {
        startTimeoutMs: Math.max(1, deadline - performance.now()),
        killGraceMs: this.#options.killGraceMs,
        maxFrameBytes: this.#options.maxFrameBytes,
        ...(this.#options.ping === undefined ? {} : { ping: this.#options.ping }),
        log,
      })
      return { worker, cleaned: host.exited.then(() => swarm.removeService(serviceId)) }
    } catch (err) {
      await swarm.removeService(serviceId).catch(() => undefined)
      throw err
    }
  }

  /**
   * Waits for the service's task to run with its port published. A task the engine cannot place
   * (no node with room, a constraint no node meets) waits until `deadline`, and the start fails
   * with the engine's reason.
   */
  async #running(serviceId: string, deadline: number): Promise<TaskState> {
    let last: TaskState | undefined
    for (;;) {
      const [task] = await this.#options.swarm.tasks({ service: serviceId })
      last = task ?? last
      if (task?.state === 'running' && task.publishedPort !== undefined) return task
      if (task !== undefined && taskEnded(task)) {
        throw new BerthError('runner_crashed', `the runner's task ended: ${describe(task)}`)
      }
      if (performance.now() + WATCH_MS > deadline) {
        throw new BerthError(
          'runner_start_timeout',
          `the runner's task did not start in time: ${last === undefined ? 'no task yet' : describe(last)}`,
        )
      }
      await new Promise((resolve) => setTimeout(resolve, WATCH_MS))
    }
  }

  ended(taskId: string): Promise<TaskState | undefined> {
    return new Promise((resolve) => {
      this.#watched.set(taskId, { last: undefined, resolve })
      this.#timer ??= setInterval(() => void this.#poll(), WATCH_MS)
    })
  }

  /** One look at every watched runner's task: one call to the engine, however many runners. */
  async #poll(): Promise<void> {
    let tasks: Map<string, TaskState>
    try {
      const all = await this.#options.swarm.tasks({
        label: `${OWNER_LABEL}=${this.#options.owner}`,
      })
      tasks = new Map(all.map((t) => [t.id, t]))
    } catch {
      return // The engine did not answer: asked again at the next tick.
    }
    for (const [taskId, watched] of this.#watched) {
      const task = tasks.get(taskId)
      if (task !== undefined && !taskEnded(task)) {
        watched.last = task
        continue
      }
      this.#watched.delete(taskId)
      watched.resolve(task ?? watched.last)
    }
    if (this.#watched.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer)
      this.#timer = undefined
    }
  }

  /** Removes every service an earlier server of this data dir left. */
  async endLeftovers(): Promise<number> {
    const { swarm, owner } = this.#options
    const left = await swarm.listServices(OWNER_LABEL, owner)
    for (const id of left) await swarm.removeService(id)
    return left.length
  }
}

interface Watched {
  last: TaskState | undefined
  readonly resolve: (task: TaskState | undefined) => void
}

function describe(task: TaskState): string {
  return [task.state, task.error ?? task.message].filter((s) => s !== '').join(': ')
}
