import type { RunnerRuntime } from '../../domain/serving-plan.js'
import { BerthError, isBerthError } from '../../errors/berth-error.js'
import type { DockerEngine } from '../docker/docker-engine.js'
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
import { ServiceHost } from './service-host.js'
import { type SwarmEngine, type TaskState, taskEnded } from './swarm-engine.js'
import { TaskWatcher, WATCH_MS } from './task-watch.js'

/** `readOnlyPaths` are mounted in every task: on every node, the same files at the same paths. */
export interface ServiceLauncherOptions extends ContainerRunnerOptions {
  readonly swarm: SwarmEngine
  /** This node's engine (the manager berth talks to), for the tasks it runs itself. */
  readonly local: DockerEngine
  /** This engine's own Swarm node id. */
  readonly localNodeId: string
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
export class ServiceLauncher implements RunnerLauncher {
  readonly #options: ServiceLauncherOptions
  readonly #watch: TaskWatcher

  constructor(options: ServiceLauncherOptions) {
    this.#options = options
    this.#watch = new TaskWatcher(options.swarm, options.owner)
  }

  async launch(
    runtime: RunnerRuntime,
    limits: RunnerLimits | undefined,
    log: (line: string) => void,
  ): Promise<Launched> {
    const { swarm, startTimeoutMs } = this.#options
    const deadline = performance.now() + startTimeoutMs
    const runner = runnerIdentity(this.#options, runtime)
    const serviceId = await swarm.createService({
      name: runner.name,
      image: runner.image,
      args: [...runner.command],
      user: runner.user,
      env: runner.env,
      labels: runner.labels,
      readOnlyPaths: this.#options.readOnlyPaths,
      ...(this.#options.scratch === undefined ? {} : { scratch: this.#options.scratch }),
      ...(limits === undefined
        ? {}
        : {
            memoryBytes: limits.memoryBytes,
            cpus: limits.cpus,
            reservedCpus: limits.cpus / this.#options.cpuOvercommit,
            gpus: limits.gpus,
            constraints: Object.entries(limits.nodeSelector ?? {}).map(
              ([label, value]) => `node.labels.${label}==${value}`,
            ),
          }),
      port: RUNNER_PORT,
      stopGraceMs: this.#options.killGraceMs,
      locked: { pidsLimit: RUNNER_PIDS_LIMIT },
    })
    try {
      const task = await this.#running(serviceId, deadline).catch((err: unknown) => {
        // A node without the image rejects the task (berth never has the engine pull).
        if (isBerthError(err, 'runner_crashed') && /No such image/i.test(err.message)) {
          throw imageMissing(runtime, runner.image)
        }
        throw err
      })
      // What the runner prints reaches the server's log, as a runner process's output does.
      void swarm.followLogs(serviceId, log)
      const node = (await swarm.nodes()).find((n) => n.id === task.nodeId)
      const address = node === undefined || node.addr === '0.0.0.0' ? '127.0.0.1' : node.addr
      const local = task.nodeId === this.#options.localNodeId ? this.#options.local : undefined
      const host = new ServiceHost(swarm, this.#watch, serviceId, task, {
        local,
        killGraceMs: this.#options.killGraceMs,
      })
      const at = { host: address, port: task.publishedPort as number }
      const worker = await attachRunner(host, at, runner.token, deadline, this.#options, log)
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
    let unanswered: unknown
    for (;;) {
      // An engine that misses a beat is asked again until the deadline, as the watch does.
      const [task] = await this.#options.swarm.tasks({ service: serviceId }).then(
        (tasks) => tasks,
        (err: unknown) => {
          unanswered = err
          return []
        },
      )
      last = task ?? last
      if (task?.state === 'running' && task.publishedPort !== undefined) return task
      if (task !== undefined && taskEnded(task)) {
        throw new BerthError('runner_crashed', `the runner's task ended: ${describe(task)}`)
      }
      if (performance.now() + WATCH_MS > deadline) {
        throw new BerthError(
          'runner_start_timeout',
          `the runner's task did not start in time: ${last !== undefined ? describe(last) : unanswered instanceof Error ? unanswered.message : 'no task yet'}`,
        )
      }
      await new Promise((resolve) => setTimeout(resolve, WATCH_MS))
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

function describe(task: TaskState): string {
  return [task.state, task.error ?? task.message].filter((s) => s !== '').join(': ')
}
