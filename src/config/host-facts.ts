import { readFileSync } from 'node:fs'
import { availableParallelism, totalmem } from 'node:os'
import { join } from 'node:path'

/** What the machine has, detected by the caller; the node capacity defaults to it. */
export interface HostFacts {
  readonly cpus: number
  readonly memoryBytes: number
}

/** Where a process reads its control groups (a test points it at a folder of its own). */
export interface CgroupFiles {
  /** `/proc/self/cgroup`'s text. */
  readonly self: string
  /** Reads a file under the cgroup mount (`/sys/fs/cgroup`); `undefined` when it is not there. */
  read(path: string): string | undefined
}

/**
 * This machine's CPUs and memory, as far as this process may use them: in a container (or any
 * control group) with a CPU quota or a memory limit, the quota and the limit, not the host's
 * cores and RAM. Node's `availableParallelism()` counts the cores the process may be scheduled
 * on, not its CPU quota; `process.constrainedMemory()` is the memory limit of its control group.
 */
export function detectHost(files: CgroupFiles = systemCgroups()): HostFacts {
  const quota = cpuQuota(files)
  const cores = availableParallelism()
  const limit = process.constrainedMemory?.() ?? 0
  const total = totalmem()
  return {
    cpus: quota === undefined ? cores : Math.min(cores, quota),
    memoryBytes: limit > 0 && limit < total ? limit : total,
  }
}

/**
 * The CPU quota of this process's control group in CPUs (`--cpus`), or `undefined` when it has
 * none: cgroup v2's `cpu.max` ("max 100000", "150000 100000"), or v1's `cpu.cfs_quota_us` over
 * `cpu.cfs_period_us`. Read at the group's own path and at the mount's root (a container sees its
 * own group there).
 */
export function cpuQuota(files: CgroupFiles): number | undefined {
  const lines = files.self.split('\n').map((line) => line.split(':'))
  const v2 = lines.find((parts) => parts[0] === '0' && parts[1] === '')?.[2]
  const v1 = lines.find((parts) => (parts[1] ?? '').split(',').includes('cpu'))
  if (v1 !== undefined) {
    for (const dir of candidates(v1[1] as string, v1[2] ?? '/')) {
      const quota = Number(files.read(relative(dir, 'cpu.cfs_quota_us'))?.trim())
      const period = Number(files.read(relative(dir, 'cpu.cfs_period_us'))?.trim())
      if (quota > 0 && period > 0) return quota / period
    }
    return undefined
  }
  if (v2 === undefined) return undefined
  for (const dir of new Set([v2, '/'])) {
    const [quota, period] = (files.read(relative(dir, 'cpu.max')) ?? '').trim().split(' ')
    if (quota !== undefined && quota !== 'max' && Number(quota) > 0 && Number(period) > 0) {
      return Number(quota) / Number(period)
    }
  }
  return undefined
}

/** A file's path under the cgroup mount, without a leading slash. */
function relative(dir: string, file: string): string {
  return join(dir, file).replace(/^\/+/, '')
}

/** v1 mounts a controller as `cpu`, `cpu,cpuacct` or `cpuacct,cpu`; its own path, then the root. */
function candidates(controllers: string, path: string): string[] {
  const mounts = [...new Set([controllers, 'cpu', 'cpu,cpuacct'])]
  return mounts.flatMap((mount) => [join(mount, path), mount])
}

function systemCgroups(): CgroupFiles {
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8')
    } catch {
      return undefined
    }
  }
  return {
    self: read('/proc/self/cgroup') ?? '',
    read: (path) => read(join('/sys/fs/cgroup', path)),
  }
}
