import { EngineApi } from './engine-api.js'

/**
 * The container calls of the Docker Engine API that the `docker` scheduler makes (over
 * `EngineApi`: plain HTTP on the engine's socket).
 */

/** The writable /tmp of a locked container: in memory, counted against its memory limit. */
export const TMPFS_BYTES = 64 * 1024 * 1024

export interface ContainerSpec {
  readonly name: string
  readonly image: string
  readonly cmd?: readonly string[]
  /** `uid:gid` its processes run as; the image's user when unset. */
  readonly user?: string
  readonly env?: Readonly<Record<string, string>>
  readonly labels?: Readonly<Record<string, string>>
  /** Bytes; the kernel's limit (the container is OOM-killed past it). */
  readonly memoryBytes?: number
  /** CPUs as a fraction of cores (`--cpus`): a CFS quota. */
  readonly cpus?: number
  /** GPUs handed to the container (`--gpus N`); none when unset or 0. */
  readonly gpus?: number
  /**
   * Locked down for untrusted work: no capabilities, no new privileges, a read-only root with a
   * small writable /tmp in memory, and at most `pidsLimit` processes and threads.
   */
  readonly locked?: { readonly pidsLimit: number }
  /** `host:container[:ro]` volume binds. */
  readonly binds?: readonly string[]
  /** A path where a new volume of the engine's is mounted, removed with the container. */
  readonly scratch?: string
  /** A container port published on a host address (`-p 127.0.0.1::7070`, any host port). */
  readonly publish?: { readonly port: number; readonly hostIp: string }
}

/** What berth reads of a container's state. */
export interface ContainerState {
  readonly id: string
  readonly running: boolean
  readonly exitCode: number
  /** Killed by the kernel for passing its memory limit (the engine's own flag). */
  readonly oomKilled: boolean
  /** The host process id of its first process, while it runs. */
  readonly pid: number
  readonly labels: Readonly<Record<string, string>>
  /** The host port a published container port was given. */
  readonly publishedPort: number | undefined
  /** Its memory limit in bytes (0: none) and CPU quota in CPUs (0: none), as the engine holds them. */
  readonly memoryBytes: number
  readonly cpus: number
}

/** A Docker engine reached at `unix:///path/docker.sock` (DOCKER_HOST's form) or a socket path. */
export class DockerEngine {
  readonly #api: EngineApi

  constructor(host: string) {
    this.#api = new EngineApi(host)
  }

  /** Whether the engine answers. */
  ping(): Promise<boolean> {
    return this.#api.ping()
  }
  /** Whether the engine holds `image` (berth never pulls: runtime images are built or loaded). */
  async hasImage(image: string): Promise<boolean> {
    const answer = await this.#api.call('GET', `/images/${encodeURIComponent(image)}/json`)
    return answer.status === 200
  }

  /** Creates (not starts) a container; resolves its id. */
  async create(spec: ContainerSpec): Promise<string> {
    const port = spec.publish === undefined ? undefined : `${spec.publish.port}/tcp`
    const body = {
      Image: spec.image,
      ...(spec.cmd === undefined ? {} : { Cmd: spec.cmd }),
      ...(spec.user === undefined ? {} : { User: spec.user }),
      Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
      Labels: spec.labels ?? {},
      ...(port === undefined ? {} : { ExposedPorts: { [port]: {} } }),
      HostConfig: {
        ...(spec.memoryBytes === undefined
          ? {}
          : { Memory: spec.memoryBytes, MemorySwap: spec.memoryBytes }),
        ...(spec.cpus === undefined ? {} : { NanoCpus: Math.round(spec.cpus * 1e9) }),
        // As `docker run --gpus N` asks: any driver that offers the `gpu` capability (NVIDIA's).
        ...(spec.gpus === undefined || spec.gpus === 0
          ? {}
          : { DeviceRequests: [{ Driver: '', Count: spec.gpus, Capabilities: [['gpu']] }] }),
        Binds: [...(spec.binds ?? [])],
        ...(spec.scratch === undefined
          ? {}
          : { Mounts: [{ Type: 'volume', Target: spec.scratch }] }),
        ...(spec.locked === undefined
          ? {}
          : {
              CapDrop: ['ALL'],
              SecurityOpt: ['no-new-privileges'],
              ReadonlyRootfs: true,
              Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${TMPFS_BYTES}` },
              PidsLimit: spec.locked.pidsLimit,
            }),
        ...(port === undefined || spec.publish === undefined
          ? {}
          : { PortBindings: { [port]: [{ HostIp: spec.publish.hostIp, HostPort: '' }] } }),
      },
    }
    const answer = await this.#api.call(
      'POST',
      `/containers/create?name=${encodeURIComponent(spec.name)}`,
      body,
    )
    this.#api.expect(answer, [201], `create container ${spec.name}`)
    return (answer.body as { Id: string }).Id
  }

  async start(id: string): Promise<void> {
    this.#api.expect(await this.#api.call('POST', `/containers/${id}/start`), [204, 304], 'start')
  }

  /** The container's state; `undefined` when it no longer exists. */
  async inspect(id: string): Promise<ContainerState | undefined> {
    const answer = await this.#api.call('GET', `/containers/${id}/json`)
    if (answer.status === 404) return undefined
    this.#api.expect(answer, [200], 'inspect')
    const c = answer.body as {
      Id: string
      State: { Running: boolean; ExitCode: number; OOMKilled: boolean; Pid: number }
      Config: { Labels: Record<string, string> | null }
      HostConfig: { Memory: number; NanoCpus: number }
      NetworkSettings: { Ports: Record<string, { HostPort: string }[] | null> | null }
    }
    const published = Object.values(c.NetworkSettings.Ports ?? {}).find((b) => b?.[0])?.[0]
    return {
      id: c.Id,
      running: c.State.Running,
      exitCode: c.State.ExitCode,
      oomKilled: c.State.OOMKilled,
      pid: c.State.Pid,
      labels: c.Config.Labels ?? {},
      publishedPort: published === undefined ? undefined : Number(published.HostPort),
      memoryBytes: c.HostConfig.Memory,
      cpus: c.HostConfig.NanoCpus / 1e9,
    }
  }

  /** Resolves when the container has exited (at once if it has), with its exit code. */
  async wait(id: string): Promise<number> {
    const answer = await this.#api.call('POST', `/containers/${id}/wait`, undefined, 0)
    if (answer.status === 404) return -1
    this.#api.expect(answer, [200], 'wait')
    return (answer.body as { StatusCode: number }).StatusCode
  }

  /** Hands each line the container prints (stdout and stderr) to `onLine` until it exits. */
  followLogs(id: string, onLine: (line: string) => void): Promise<void> {
    return this.#api.followLines(`/containers/${id}/logs?follow=1&stdout=1&stderr=1`, onLine)
  }

  /** SIGTERM, then SIGKILL after `graceS` seconds (`docker stop`). */
  async stop(id: string, graceS: number): Promise<void> {
    const answer = await this.#api.call('POST', `/containers/${id}/stop?t=${graceS}`)
    this.#api.expect(answer, [204, 304, 404], 'stop')
  }

  /** SIGKILL at once. */
  async kill(id: string): Promise<void> {
    const answer = await this.#api.call('POST', `/containers/${id}/kill`)
    // 409: it is not running (any more).
    this.#api.expect(answer, [204, 404, 409], 'kill')
  }

  /** Removes the container, running or not. */
  async remove(id: string): Promise<void> {
    const answer = await this.#api.call('DELETE', `/containers/${id}?force=true&v=true`)
    this.#api.expect(answer, [204, 404], 'remove')
  }

  /** The ids of the containers (running or not) that carry `label=value`. */
  async list(label: string, value: string): Promise<string[]> {
    const filters = encodeURIComponent(JSON.stringify({ label: [`${label}=${value}`] }))
    const answer = await this.#api.call('GET', `/containers/json?all=1&filters=${filters}`)
    this.#api.expect(answer, [200], 'list containers')
    return (answer.body as { Id: string }[]).map((c) => c.Id)
  }
}
