import { mkdir } from 'node:fs/promises'
import type { NodeCapacity, SchedulerConfig } from '../config/config.js'
import { BerthError } from '../errors/berth-error.js'
import { ContainerLauncher } from './docker/container-launcher.js'
import { DockerEngine } from './docker/docker-engine.js'
import {
  ProcessLauncher,
  type RunnerLauncher,
  type RunnerProtocolOptions,
} from './local/runner-launcher.js'
import { ownerOf } from './runner-containers.js'
import { ServiceLauncher } from './swarm/service-launcher.js'
import { SwarmEngine } from './swarm/swarm-engine.js'

/** Where a container scheduler's runners run, and the capacity it admits them against. */
export interface ContainerPlacement {
  readonly launcher: RunnerLauncher
  readonly node: NodeCapacity
  /**
   * Where upload load checks run when runners fetch their models (`BERTH_RUNNER_FILES=fetch`):
   * runner processes of this server, which see the upload's files; unset: the scheduler's own.
   */
  readonly checkLauncher?: RunnerLauncher
  /** Reads the capacity again, where it changes (a swarm's nodes); unset: it does not. */
  readonly capacity?: () => Promise<NodeCapacity>
}

/** How often a swarm's capacity is read again. */
const CAPACITY_POLL_MS = 30_000

/** Where a runner that fetches its models keeps them: a volume of its own, in the container. */
const RUNNER_SCRATCH = '/scratch'

/**
 * The launcher of the `docker` or `swarm` scheduler, or `undefined` for `local` (runner child
 * processes). Throws `container_engine_unavailable` when the engine does not answer, or for
 * `swarm` is not a Swarm manager: the server does not start.
 */
export async function containerPlacementFor(
  scheduler: SchedulerConfig,
  dirs: {
    readonly dataDir: string
    readonly readOnlyDirs: readonly string[]
    /** Where the pids of the check runners are recorded (`fetch`). */
    readonly runDir: string
  },
  protocol: RunnerProtocolOptions & { readonly torchPython?: string | undefined },
): Promise<ContainerPlacement | undefined> {
  if (scheduler.driver === 'local') return undefined
  const { host, images } = scheduler.docker
  const engine = new DockerEngine(host)
  if (!(await engine.ping())) {
    throw new BerthError(
      'container_engine_unavailable',
      `BERTH_SCHEDULER is ${scheduler.driver}, and no Docker engine answers at ${host} (BERTH_DOCKER_HOST)`,
    )
  }
  const fetch = scheduler.runnerFiles === 'fetch'
  // Made before they are mounted: the engine would make a missing one, as root.
  if (!fetch) for (const dir of dirs.readOnlyDirs) await mkdir(dir, { recursive: true })
  const common = {
    ...protocol,
    owner: ownerOf(dirs.dataDir),
    image: (runtime: string) => (runtime === 'torch' ? images.torch : images.onnx),
    // Runners that fetch see none of this server's folders.
    readOnlyPaths: fetch ? [] : dirs.readOnlyDirs,
    ...(fetch ? { scratch: RUNNER_SCRATCH } : {}),
  }
  const checks = fetch ? await checkLauncher(dirs.runDir, protocol) : {}
  if (scheduler.driver === 'docker') {
    return {
      launcher: new ContainerLauncher({ ...common, engine }),
      node: scheduler.node,
      ...checks,
    }
  }
  const swarm = new SwarmEngine(host)
  const info = await swarm.info()
  if (info.state !== 'active' || !info.manager) {
    throw new BerthError(
      'container_engine_unavailable',
      `BERTH_SCHEDULER is swarm, and the engine at ${host} is not a Swarm manager (docker swarm init, or a manager's socket in BERTH_DOCKER_HOST)`,
    )
  }
  const launcher = new ServiceLauncher({
    ...common,
    swarm,
    local: engine,
    localNodeId: info.nodeId,
    cpuOvercommit: scheduler.node.cpuOvercommit,
  })
  return {
    launcher,
    node: await swarmCapacity(swarm, scheduler),
    // Nothing to follow when both sizes are given.
    ...(scheduler.nodeGiven.cpus && scheduler.nodeGiven.memory
      ? {}
      : { capacity: () => swarmCapacity(swarm, scheduler) }),
    ...checks,
  }
}

/**
 * Reads the capacity every `intervalMs` and offers the scheduler what it grew to: a node that
 * joins the swarm is admitted against within `intervalMs`. A node that leaves (or is drained)
 * takes nothing away: berth admits against the largest swarm it has seen, and the engine keeps a
 * task it has no room for `pending` (with its reason) until a node can take it or the load
 * timeout fails it, as it would for a deployment berth had admitted before. Returns the stop.
 */
export function followCapacity(
  read: () => Promise<NodeCapacity>,
  scheduler: { resize(node: NodeCapacity): void },
  start: NodeCapacity,
  options: { readonly intervalMs?: number; readonly log: (error: unknown) => void },
): () => void {
  let offered = start
  let reading = false
  let stopped = false
  const follow = async () => {
    // An engine slower than the interval is not asked again before it answers.
    if (reading) return
    reading = true
    try {
      const now = await read()
      if (stopped) return
      offered = {
        ...offered,
        cpus: Math.max(offered.cpus, now.cpus),
        memoryBytes: Math.max(offered.memoryBytes, now.memoryBytes),
        gpus: Math.max(offered.gpus, now.gpus),
      }
      scheduler.resize(offered)
    } catch (err) {
      // Whatever failed (the engine, or admitting what now fits) is said; the server goes on.
      options.log(err)
    } finally {
      reading = false
    }
  }
  const timer = setInterval(() => void follow(), options.intervalMs ?? CAPACITY_POLL_MS)
  timer.unref()
  return () => {
    stopped = true
    clearInterval(timer)
  }
}

/** Runner processes of this server for upload checks, first ending those a crash left. */
async function checkLauncher(
  runDir: string,
  protocol: RunnerProtocolOptions,
): Promise<{ checkLauncher: RunnerLauncher }> {
  const launcher = new ProcessLauncher({ ...protocol, runDir })
  await launcher.endLeftovers()
  return { checkLauncher: launcher }
}

/**
 * What the swarm offers: the totals of its ready, active nodes, for what `BERTH_NODE_CPUS` and
 * `BERTH_NODE_MEMORY_GB` do not say. The engine itself places each runner on a node with room
 * for its reservation, so this only bounds what berth asks of the swarm.
 */
async function swarmCapacity(
  swarm: SwarmEngine,
  scheduler: SchedulerConfig,
): Promise<NodeCapacity> {
  const nodes = (await swarm.nodes()).filter((n) => n.schedulable)
  const sum = (pick: (n: (typeof nodes)[number]) => number) =>
    nodes.reduce((total, n) => total + pick(n), 0)
  return {
    ...scheduler.node,
    cpus: scheduler.nodeGiven.cpus ? scheduler.node.cpus : sum((n) => n.cpus),
    memoryBytes: scheduler.nodeGiven.memory
      ? scheduler.node.memoryBytes
      : sum((n) => n.memoryBytes),
  }
}
