import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ContainerHost } from '../../src/scheduler/docker/container-host.js'
import { ContainerLauncher } from '../../src/scheduler/docker/container-launcher.js'
import { LocalScheduler } from '../../src/scheduler/local/local-scheduler.js'
import { WorkerProcess } from '../../src/scheduler/local/worker-process.js'
import { connectRunner } from '../../src/scheduler/runner-connection.js'
import { OWNER_LABEL } from '../../src/scheduler/runner-containers.js'
import { isRefusal } from '../../src/scheduler/scheduler.js'
import { mlpModel } from '../fixtures/onnx-models.js'
import { engineForTests } from '../helpers/docker.js'
import { eventually } from '../helpers/processes.js'
import { REPO_ROOT } from '../helpers/repo.js'
import { assertServesMlp } from '../helpers/runners.js'
import { tempDir } from '../helpers/temp-dir.js'

const LABEL = 'berth.test'

/** berth's own runner program, mounted from this checkout into the base image, as a runner. */
describe('runners in containers, through the Docker Engine API', async () => {
  const found = await engineForTests(
    process.env.BERTH_TEST_DOCKER_BASE_IMAGE || 'berth-base:bookworm',
  )
  const skip = 'skip' in found ? found.skip : undefined
  const run = randomBytes(4).toString('hex')
  let dir: Awaited<ReturnType<typeof tempDir>>
  before(async () => {
    dir = await tempDir()
  })
  after(async () => {
    if (!('skip' in found)) {
      for (const label of [LABEL, OWNER_LABEL]) {
        for (const id of await found.engine.list(label, run)) await found.engine.remove(id)
      }
    }
    await dir.remove()
  })

  it('serves a model over the socket protocol from a container, with its token', {
    skip,
  }, async () => {
    if ('skip' in found) return
    const { engine, image } = found
    await writeFile(join(dir.path, 'model.onnx'), mlpModel(4, 8, 3, 7))
    const token = randomBytes(32).toString('hex')
    const id = await engine.create({
      name: `berth-test-runner-${run}`,
      image,
      cmd: ['node', '/berth/build/src/runtime/worker-main.js', 'onnx'],
      env: { BERTH_RUNNER_LISTEN: 'tcp:0.0.0.0:7070', BERTH_RUNNER_TOKEN: token },
      labels: { [LABEL]: run },
      memoryBytes: 512 * 1024 ** 2,
      cpus: 1,
      binds: [`${REPO_ROOT}:/berth:ro`, `${dir.path}:/model:ro`],
      publish: { port: 7070, hostIp: '127.0.0.1' },
    })
    await engine.start(id)
    const state = await engine.inspect(id)
    assert.ok(state?.running)
    assert.equal(state?.labels[LABEL], run)
    const port = state?.publishedPort
    assert.ok(port !== undefined && port > 0)

    const host = new ContainerHost(engine, id, 2000)
    const channel = await connectRunner({ kind: 'tcp', host: '127.0.0.1', port }, token, 20_000)
    const worker = await WorkerProcess.attach(host, channel, {
      startTimeoutMs: 20_000,
      killGraceMs: 2000,
      maxFrameBytes: 1 << 30,
    })
    await assertServesMlp(worker, '/model/model.onnx', 20_000)
    await worker.stop()
    await host.exited
    assert.equal(host.running, false)
    assert.equal(await host.oomKilled, false)
    await engine.remove(id)
    assert.equal(await engine.inspect(id), undefined)
  })

  it("forwards what a runner container prints to the server's log", { skip }, async () => {
    if ('skip' in found) return
    const worker = join(REPO_ROOT, 'build/src/runtime/worker-main.js')
    const launcher = new ContainerLauncher({
      engine: found.engine,
      owner: run,
      image: () => found.image,
      // A runner that says something first, as a failing model's runner would.
      command: (runtime) => [
        'sh',
        '-c',
        `echo runner-says-hello >&2; exec node ${worker} ${runtime}`,
      ],
      readOnlyPaths: [REPO_ROOT],
      startTimeoutMs: 20_000,
      killGraceMs: 1000,
      maxFrameBytes: 1 << 30,
    })
    const lines: string[] = []
    const launched = await launcher.launch('onnx', undefined, (line) => lines.push(line))
    try {
      await eventually(() => lines.includes('runner-says-hello'), 10_000)
    } finally {
      await launched.worker.stop()
      await launched.cleaned
    }
  })

  it('ends a scheduled runner the kernel killed at its memory_gb as memory_limit_exceeded', {
    skip,
  }, async () => {
    if ('skip' in found) return
    const { engine, image } = found
    // A 64 MB model in a 128 MiB container: the load takes it past its limit.
    await writeFile(join(dir.path, 'wide.onnx'), mlpModel(4096, 4096, 4, 1))
    const scheduler = await LocalScheduler.open({
      node: { cpus: 2, cpuOvercommit: 1, memoryBytes: 4 * 1024 ** 3, gpus: 0 },
      runDir: join(dir.path, 'run'),
      startTimeoutMs: 20_000,
      killGraceMs: 1000,
      // berth's own memory watch looks too seldom to get there first: the kernel's limit acts.
      memoryPollMs: 600_000,
      maxFrameBytes: 1 << 30,
      launcher: new ContainerLauncher({
        engine,
        owner: run,
        image: () => image,
        command: (runtime) => [
          'node',
          join(REPO_ROOT, 'build/src/runtime/worker-main.js'),
          runtime,
        ],
        readOnlyPaths: [REPO_ROOT, dir.path],
        startTimeoutMs: 20_000,
        killGraceMs: 1000,
        maxFrameBytes: 1 << 30,
      }),
    })
    try {
      const reservation = scheduler.reserve({
        numCpus: 1,
        memoryBytes: 128 * 1024 ** 2,
        numGpus: 0,
      })
      assert.ok(!isRefusal(reservation))
      const runner = await scheduler.start(reservation, {
        runtime: 'onnx',
        label: 'wide',
        organizationId: 'org_test',
      })
      const [id] = await engine.list(OWNER_LABEL, run)
      assert.equal((await engine.inspect(id as string))?.memoryBytes, 128 * 1024 ** 2)
      await assert.rejects(
        runner.load({ path: join(dir.path, 'wide.onnx'), root: dir.path }, 20_000),
      )
      const end = await runner.ended
      assert.equal(end.cause, 'memory_limit_exceeded', end.message)
      reservation.release()
      // The container is removed once its runner has ended.
      await eventually(async () => !(await engine.list(OWNER_LABEL, run)).includes(id as string))
    } finally {
      await scheduler.close()
    }
  })

  it('has the kernel enforce the memory limit, and says so (OOMKilled)', { skip }, async () => {
    if ('skip' in found) return
    const { engine, image } = found
    const id = await engine.create({
      name: `berth-test-oom-${run}`,
      image,
      cmd: ['node', '-e', 'const a = []; for (;;) a.push(Buffer.alloc(8e6, 1))'],
      labels: { [LABEL]: run },
      memoryBytes: 64 * 1024 ** 2,
    })
    await engine.start(id)
    const host = new ContainerHost(engine, id, 1000)
    const exit = await host.exited
    assert.equal(exit.code, 137)
    assert.equal(await host.oomKilled, true)
  })

  it('sets the CPU quota in the container cgroup', { skip }, async () => {
    if ('skip' in found) return
    const { engine, image } = found
    // cgroup v1 (cpu.cfs_quota_us) or v2 (cpu.max): half a CPU is 50 ms of every 100 ms.
    const check =
      'q=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d" " -f1 /sys/fs/cgroup/cpu.max); test "$q" = 50000'
    const id = await engine.create({
      name: `berth-test-cpu-${run}`,
      image,
      cmd: ['sh', '-c', check],
      labels: { [LABEL]: run },
      cpus: 0.5,
    })
    await engine.start(id)
    assert.equal(await engine.wait(id), 0)
    assert.deepEqual((await engine.list(LABEL, run)).includes(id), true)
  })
})
