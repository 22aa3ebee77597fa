import { TMPFS_BYTES } from '../docker/docker-engine.js'
import { EngineApi } from '../docker/engine-api.js'

/**
 * The Swarm calls of the Docker Engine API that the `swarm` scheduler makes, on a manager's
 * socket: services, their tasks, and the nodes that run them.
 */

/** The generic resource GPU nodes advertise to the swarm (what NVIDIA's guide names it). */
const SWARM_GPU_KIND = 'NVIDIA-GPU'

export interface ServiceSpec {
  readonly name: string
  readonly image: string
  /** The command in the image (the image's entrypoint, if any, stays). */
  readonly args: readonly string[]
  /** `uid:gid` its processes run as. */
  readonly user?: string
  readonly env: Readonly<Record<string, string>>
  readonly labels: Readonly<Record<string, string>>
  /** Host folders mounted read-only at the same path, on whichever node runs the task. */
  readonly readOnlyPaths: readonly string[]
  /**
   * A path where a new volume of the task's node is mounted (removed with the task's container).
   */
  readonly scratch?: string
  /** Reserved and limited alike: the engine places by the one, the kernel enforces the other. */
  readonly memoryBytes?: number
  /** The CPU quota (the limit). */
  readonly cpus?: number
  /** The CPUs the engine places the task by: less than `cpus` where CPU time is overcommitted. */
  readonly reservedCpus?: number
  /**
   * GPUs the task reserves, as the nodes advertise them: the generic resource `NVIDIA-GPU`
   * (`node-generic-resources` in each GPU node's daemon.json). None when unset or 0.
   */
  readonly gpus?: number
  /** The container port published in host mode on the task's node (any free port there). */
  readonly port: number
  /** How long a task asked to stop has before it is killed. */
  readonly stopGraceMs: number
  /**
   * Locked down for untrusted work: no capabilities, a read-only root with a small writable /tmp
   * in memory, and at most `pidsLimit` processes and threads.
   */
  readonly locked?: { readonly pidsLimit: number }
  /** Placement constraints (`node.labels.gpu==a100`): nodes the task may run on. */
  readonly constraints?: readonly string[]
}

/** Where a task is in its life, as the engine says (`docker service ps`). */
export interface TaskState {
  readonly id: string
  readonly nodeId: string
  /** new, pending, assigned, accepted, preparing, starting, running, complete, failed, shutdown, rejected, orphaned, remove */
  readonly state: string
  readonly desiredState: string
  /** Why it is where it is (`no suitable node (insufficient resources on 1 node)`). */
  readonly message: string
  readonly error: string | undefined
  readonly containerId: string | undefined
  /** Its first process's pid on its node, while it runs. */
  readonly pid: number | undefined
  readonly exitCode: number | undefined
  /** The node port its container port was published on. */
  readonly publishedPort: number | undefined
}

/** The task states a task never leaves. */
const ENDED = new Set(['complete', 'failed', 'shutdown', 'rejected', 'orphaned', 'remove'])

/**
 * Whether the task has ended, or is being ended: its state is final, or the engine wants it shut
 * down (a drained node's task, a lost node's), which is the end of its runner either way.
 */
export function taskEnded(task: TaskState): boolean {
  return ENDED.has(task.state) || ENDED.has(task.desiredState)
}

export interface SwarmNode {
  readonly id: string
  /** The address other nodes and berth reach it at. */
  readonly addr: string
  /** Ready and active: the engine places new tasks on it. */
  readonly schedulable: boolean
  readonly cpus: number
  readonly memoryBytes: number
}

export interface SwarmInfo {
  /** `active` once the engine is part of a swarm. */
  readonly state: string
  /** This engine's own node, and whether it is a manager (can create services). */
  readonly nodeId: string
  readonly manager: boolean
}

export class SwarmEngine {
  readonly #api: EngineApi

  constructor(host: string) {
    this.#api = new EngineApi(host)
  }

  ping(): Promise<boolean> {
    return this.#api.ping()
  }

  async info(): Promise<SwarmInfo> {
    const answer = await this.#api.call('GET', '/info')
    this.#api.expect(answer, [200], 'describe itself')
    const swarm = (
      answer.body as {
        Swarm?: { LocalNodeState?: string; NodeID?: string; ControlAvailable?: boolean }
      }
    ).Swarm
    return {
      state: swarm?.LocalNodeState ?? 'inactive',
      nodeId: swarm?.NodeID ?? '',
      manager: swarm?.ControlAvailable === true,
    }
  }

  async nodes(): Promise<SwarmNode[]> {
    const answer = await this.#api.call('GET', '/nodes')
    this.#api.expect(answer, [200], 'list nodes')
    return (answer.body as RawNode[]).map((n) => ({
      id: n.ID,
      addr: n.Status?.Addr ?? '',
      schedulable: n.Status?.State === 'ready' && n.Spec?.Availability === 'active',
      cpus: (n.Description?.Resources?.NanoCPUs ?? 0) / 1e9,
      memoryBytes: n.Description?.Resources?.MemoryBytes ?? 0,
    }))
  }

  /** Creates a service of one task; resolves its id. */
  async createService(spec: ServiceSpec): Promise<string> {
    const resources = (cpus: number | undefined) => ({
      ...(spec.memoryBytes === undefined ? {} : { MemoryBytes: spec.memoryBytes }),
      ...(cpus === undefined ? {} : { NanoCPUs: Math.round(cpus * 1e9) }),
    })
    const body = {
      Name: spec.name,
      Labels: spec.labels,
      TaskTemplate: {
        ContainerSpec: {
          Image: spec.image,
          Args: spec.args,
          ...(spec.user === undefined ? {} : { User: spec.user }),
          Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
          Labels: spec.labels,
          Mounts: [
            ...spec.readOnlyPaths.map((path) => ({
              Type: 'bind',
              Source: path,
              Target: path,
              ReadOnly: true,
            })),
            ...(spec.scratch === undefined ? [] : [{ Type: 'volume', Target: spec.scratch }]),
            ...(spec.locked === undefined
              ? []
              : [{ Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: TMPFS_BYTES } }]),
          ],
          ...(spec.locked === undefined ? {} : { ReadOnly: true, CapabilityDrop: ['ALL'] }),
          StopGracePeriod: Math.round(spec.stopGraceMs * 1e6),
        },
        Resources: {
          Limits: {
            ...resources(spec.cpus),
            ...(spec.locked === undefined ? {} : { Pids: spec.locked.pidsLimit }),
          },
          Reservations: {
            ...resources(spec.reservedCpus ?? spec.cpus),
            ...(spec.gpus === undefined || spec.gpus === 0
              ? {}
              : {
                  GenericResources: [
                    { DiscreteResourceSpec: { Kind: SWARM_GPU_KIND, Value: spec.gpus } },
                  ],
                }),
          },
        },
        // berth restarts a runner that ended by its own policy (and knows why it ended).
        RestartPolicy: { Condition: 'none' },
        Placement: { Constraints: [...(spec.constraints ?? [])] },
      },
      Mode: { Replicated: { Replicas: 1 } },
      EndpointSpec: {
        Ports: [{ Protocol: 'tcp', TargetPort: spec.port, PublishMode: 'host' }],
      },
    }
    const answer = await this.#api.call('POST', '/services/create', body)
    this.#api.expect(answer, [201], `create service ${spec.name}`)
    return (answer.body as { ID: string }).ID
  }

  /**
   * Hands each line the service's task prints to `onLine` until the service goes (the managers
   * gather it from whichever node runs the task).
   */
  followLogs(id: string, onLine: (line: string) => void): Promise<void> {
    return this.#api.followLines(`/services/${id}/logs?follow=1&stdout=1&stderr=1`, onLine)
  }

  /** Removes the service; its task is stopped (SIGTERM, then SIGKILL after its grace). */
  async removeService(id: string): Promise<void> {
    const answer = await this.#api.call('DELETE', `/services/${id}`)
    this.#api.expect(answer, [200, 404], 'remove service')
  }

  /** The ids of the services that carry `label=value`. */
  async listServices(label: string, value: string): Promise<string[]> {
    const filters = encodeURIComponent(JSON.stringify({ label: [`${label}=${value}`] }))
    const answer = await this.#api.call('GET', `/services?filters=${filters}`)
    this.#api.expect(answer, [200], 'list services')
    return (answer.body as { ID: string }[]).map((s) => s.ID)
  }

  /**
   * Tasks, newest first: a service's (none once it is gone), or those of every service that
   * carries a label (`{ label: 'berth.owner=…' }`).
   */
  async tasks(of: { readonly service: string } | { readonly label: string }): Promise<TaskState[]> {
    const filter = 'service' in of ? { service: [of.service] } : { label: [of.label] }
    const filters = encodeURIComponent(JSON.stringify(filter))
    const answer = await this.#api.call('GET', `/tasks?filters=${filters}`)
    if (answer.status === 404) return []
    this.#api.expect(answer, [200], 'list tasks')
    return (answer.body as RawTask[])
      .map((t) => ({
        id: t.ID,
        nodeId: t.NodeID ?? '',
        state: t.Status?.State ?? 'new',
        desiredState: t.DesiredState ?? '',
        message: t.Status?.Message ?? '',
        error: t.Status?.Err,
        containerId: t.Status?.ContainerStatus?.ContainerID,
        pid: t.Status?.ContainerStatus?.PID,
        exitCode: t.Status?.ContainerStatus?.ExitCode,
        publishedPort: t.Status?.PortStatus?.Ports?.find((p) => p.PublishedPort)?.PublishedPort,
        createdAt: t.CreatedAt ?? '',
      }))
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      .map(({ createdAt: _, ...task }) => task)
  }
}

interface RawNode {
  ID: string
  Status?: { State?: string; Addr?: string }
  Spec?: { Availability?: string }
  Description?: { Resources?: { NanoCPUs?: number; MemoryBytes?: number } }
}

interface RawTask {
  ID: string
  NodeID?: string
  CreatedAt?: string
  DesiredState?: string
  Status?: {
    State?: string
    Message?: string
    Err?: string
    ContainerStatus?: { ContainerID?: string; PID?: number; ExitCode?: number }
    PortStatus?: { Ports?: { TargetPort?: number; PublishedPort?: number }[] }
  }
}
