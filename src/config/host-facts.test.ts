import assert from 'node:assert/strict'
import { availableParallelism } from 'node:os'
import { describe, it } from 'node:test'
import { type CgroupFiles, cpuQuota, detectHost } from './host-facts.js'

/** A cgroup mount of literal files, as a process inside or outside a container sees one. */
function cgroups(self: string, files: Record<string, string>): CgroupFiles {
  return { self, read: (path) => files[path] }
}

const V1_CONTAINER = ['4:memory:/docker/abc', '2:cpuacct:/docker/abc', '1:cpu:/docker/abc'].join(
  '\n',
)

describe('host facts', () => {
  it("reads a container's CPU quota under cgroup v1 (its own group at the mount's root)", () => {
    const files = cgroups(V1_CONTAINER, {
      'cpu/cpu.cfs_quota_us': '150000\n',
      'cpu/cpu.cfs_period_us': '100000\n',
    })
    assert.equal(cpuQuota(files), 1.5)
  })

  it('reads a group of its own under v1 and v2, and no quota where there is none', () => {
    const v1 = cgroups('3:cpu,cpuacct:/slice/job', {
      'cpu,cpuacct/slice/job/cpu.cfs_quota_us': '50000',
      'cpu,cpuacct/slice/job/cpu.cfs_period_us': '100000',
    })
    assert.equal(cpuQuota(v1), 0.5)
    const unlimited = cgroups('1:cpu:/', {
      'cpu/cpu.cfs_quota_us': '-1',
      'cpu/cpu.cfs_period_us': '100000',
    })
    assert.equal(cpuQuota(unlimited), undefined)
    assert.equal(cpuQuota(cgroups('0::/job.slice', { 'job.slice/cpu.max': '200000 100000\n' })), 2)
    assert.equal(cpuQuota(cgroups('0::/', { 'cpu.max': '250000 100000\n' })), 2.5)
    assert.equal(cpuQuota(cgroups('0::/', { 'cpu.max': 'max 100000\n' })), undefined)
    assert.equal(cpuQuota(cgroups('', {})), undefined)
  })

  it('offers the quota where it is less than the cores, and the cores otherwise', () => {
    const quota = (cpus: number) =>
      cgroups('0::/', { 'cpu.max': `${Math.round(cpus * 100000)} 100000` })
    assert.equal(detectHost(quota(0.5)).cpus, 0.5)
    assert.equal(detectHost(quota(10_000)).cpus, availableParallelism())
    assert.equal(detectHost(cgroups('', {})).cpus, availableParallelism())
  })
})
