import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { OWNER_LABEL, ownerOf, RUNNER_PIDS_LIMIT } from '../../src/scheduler/runner-containers.js'
import { ServiceLauncher } from '../../src/scheduler/swarm/service-launcher.js'
import { mlpModel, referenceMlp } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import {
  assertLocked,
  dockerOk,
  engineForTests,
  holdSwarmNode,
  RUNTIME_IMAGE_ONNX,
} from '../helpers/docker.js'
import { assertClose } from '../helpers/inference.js'
import { eventually } from '../helpers/processes.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import {
  archivePart,
  createNamespace,
  formFields,
  uploadAndWait,
  uploadModel,
} from '../helpers/uploads.js'

/** `docker service inspect`'s spec of one service (the CLI: berth itself never reads specs). */
async function serviceSpec(id: string): Promise<ServiceSpecView> {
  const stdout = await dockerOk(['service', 'inspect', id])
  return (JSON.parse(stdout) as { Spec: ServiceSpecView }[])[0]?.Spec as ServiceSpecView
}

interface ServiceSpecView {
  TaskTemplate: {
    Resources: {
      Limits: { NanoCPUs?: number; MemoryBytes?: number; Pids?: number }
      Reservations: { NanoCPUs?: number; MemoryBytes?: number }
    }
    RestartPolicy: { Condition: string }
    Placement?: { Constraints?: string[] }
  }
  EndpointSpec: { Ports: { PublishMode: string; TargetPort: number }[] }
}

/** This engine's own Swarm node. */
async function selfNode(): Promise<string> {
  return (await dockerOk(['info', '--format', '{{.Swarm.NodeID}}'])).trim()
}

async function setAvailability(availability: 'drain' | 'active'): Promise<void> {
  await dockerOk(['node', 'update', '--availability', availability, await selfNode()])
}

const X = [1, 2, 3, 4]
const WANT = referenceMlp(X, 1, 4, 8, 3, 7)

describe('BERTH_SCHEDULER=swarm: models served from Swarm services', async () => {
  const found = await engineForTests(RUNTIME_IMAGE_ONNX, { swarm: true })
  const skip = 'skip' in found ? found.skip : undefined
  let t: TestApp | undefined
  let ns = ''
  const services = async (): Promise<string[]> =>
    'skip' in found || t === undefined
      ? []
      : found.swarm.listServices(OWNER_LABEL, ownerOf(t.dataDir))
  const infer = async () => {
    const res = await (t as TestApp).request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/boxed_1_0_0/infer`,
      key: BOOTSTRAP_KEY,
      body: { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: X }] },
    })
    if (res.statusCode !== 200) return res
    assertClose(res.json().outputs[0].data as number[], WANT)
    return res
  }

  let releaseNode: (() => Promise<void>) | undefined
  before(async () => {
    if ('skip' in found) return
    // This file drains the node: no other file may use the swarm meanwhile.
    releaseNode = await holdSwarmNode()
    t = await startTestApp({
      BERTH_SCHEDULER: 'swarm',
      BERTH_DOCKER_HOST: found.host,
      BERTH_RUNTIME_IMAGE_ONNX: found.image,
    })
    ns = await createNamespace(t, 'swarm')
  })
  after(async () => {
    try {
      if (!('skip' in found)) await setAvailability('active')
      await t?.close()
      if (!('skip' in found) && t !== undefined) {
        // Closing the server removed every service it ran.
        assert.deepEqual(await services(), [])
      }
    } finally {
      await releaseNode?.()
    }
  })

  it('deploys a model as a service reserving and limited to its resources, and serves it', {
    skip,
  }, async () => {
    if ('skip' in found || t === undefined) return
    const up = await uploadAndWait(
      t,
      ns,
      { name: 'boxed', model_format: 'onnx', memory_gb: '0.5', num_cpus: '0.5' },
      { 'model.onnx': mlpModel(4, 8, 3, 7) },
    )
    assert.equal(up.deployment_status, 'deployed', JSON.stringify(up))

    const [id, ...others] = await services()
    assert.equal(others.length, 0, 'one service: the upload check is gone')
    const spec = await serviceSpec(id as string)
    const memory = 0.5 * 1024 ** 3
    assert.deepEqual(spec.TaskTemplate.Resources.Limits, {
      NanoCPUs: 0.5e9,
      MemoryBytes: memory,
      Pids: RUNNER_PIDS_LIMIT,
    })
    // Placed by its memory and its share of CPU time (BERTH_CPU_OVERCOMMIT, 4 by default).
    assert.deepEqual(spec.TaskTemplate.Resources.Reservations, {
      NanoCPUs: 0.125e9,
      MemoryBytes: memory,
    })
    assert.equal(spec.TaskTemplate.RestartPolicy.Condition, 'none', "berth's restart policy")
    assert.deepEqual(
      spec.EndpointSpec.Ports.map((p) => p.PublishMode),
      ['host'],
      'no routing mesh',
    )
    // The task's container holds the limit the kernel enforces.
    const [task] = await found.swarm.tasks({ service: id as string })
    assert.equal(task?.state, 'running')
    const container = await found.engine.inspect(task?.containerId as string)
    assert.equal(container?.memoryBytes, 0.5 * 1024 ** 3)
    assert.equal(container?.cpus, 0.5)
    // Engine API 1.41 has no "no new privileges" for services: the one lock a task lacks.
    await assertLocked(task?.containerId as string, { noNewPrivileges: false })

    const res = await infer()
    assert.equal(res.statusCode, 200, res.body)
  })

  it('redeploys with no failed request: the new service serves before the old one goes', {
    skip,
  }, async () => {
    if ('skip' in found || t === undefined) return
    const app = t
    const [before] = await services()
    let done = false
    const failures: string[] = []
    let served = 0
    const load = (async () => {
      while (!done) {
        const res = await infer()
        if (res.statusCode === 200) served += 1
        else failures.push(`${res.statusCode} ${res.body}`)
      }
    })()
    const redeploy = await app.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/boxed_1_0_0/deploy?wait=true`,
      key: BOOTSTRAP_KEY,
      body: { max_batch_size: 2 },
    })
    // Requests go on a little after the swap, to the new service alone.
    await eventually(async () => !(await services()).includes(before as string), 30_000)
    const servedAtSwap = served
    await eventually(() => served > servedAtSwap + 5, 30_000)
    done = true
    await load
    assert.equal(redeploy.statusCode, 200, redeploy.body)
    assert.equal(redeploy.json().deployment_status, 'deployed')
    assert.deepEqual(failures, [])
    const after = await services()
    assert.equal(after.length, 1)
    assert.notEqual(after[0], before, 'a new service')
  })

  it('replaces a runner whose node is drained once a node can take it', {
    skip,
  }, async () => {
    if ('skip' in found || t === undefined) return
    const [before] = await services()
    await setAvailability('drain')
    try {
      // The engine stops the drained node's task; berth sees its runner end and asks for a new
      // one, which the engine cannot place while no node is active.
      await eventually(async () => {
        const now = await services()
        if (now.length !== 1 || now[0] === before) return false
        const [task] = await found.swarm.tasks({ service: now[0] as string })
        return task?.state === 'pending'
      }, 60_000)
      // Meanwhile a request is held while the model reloads, and answered with its reason.
      const refused = await infer()
      assert.ok([503, 504].includes(refused.statusCode), refused.body)
      assert.equal(refused.json().error.details.state, 'loading', refused.body)
    } finally {
      await setAvailability('active')
    }
    await eventually(async () => (await infer()).statusCode === 200, 60_000)
    const after = await services()
    assert.equal(after.length, 1)
    assert.notEqual(after[0], before)
  })

  it('places a model only on nodes with the labels of its node_selector', { skip }, async () => {
    if ('skip' in found || t === undefined) return
    const app = t
    const label = `berth-test-${process.pid}`
    const nodeLabel = async (change: '--label-add' | '--label-rm') => {
      const value = change === '--label-add' ? `${label}=here` : label
      await dockerOk(['node', 'update', change, value, await selfNode()])
    }
    const selector = JSON.stringify({ [label]: 'here' })
    const up = await uploadModel(app, ns, [
      archivePart(await tarGzOf({ 'model.onnx': mlpModel(4, 8, 3, 7) })),
      ...formFields({
        name: 'placed',
        version: '1.0.0',
        model_format: 'onnx',
        memory_gb: '0.5',
        node_selector: selector,
      }),
    ])
    assert.equal(up.statusCode, 200, up.body)
    const placed = async () => {
      const mine = await services()
      for (const id of mine) {
        const spec = await serviceSpec(id)
        if (spec.TaskTemplate.Placement?.Constraints?.includes(`node.labels.${label}==here`))
          return id
      }
      return undefined
    }
    try {
      // No node carries the label: the engine holds the task, saying why.
      await eventually(async () => {
        const id = await placed()
        const [task] = id === undefined ? [] : await found.swarm.tasks({ service: id })
        return task?.state === 'pending' && /constraint/.test(task.message + (task.error ?? ''))
      }, 30_000)
      await nodeLabel('--label-add')
      await eventually(async () => {
        const res = await app.request({
          method: 'POST',
          url: `/v1/namespaces/${ns}/models/placed_1_0_0/infer`,
          key: BOOTSTRAP_KEY,
          body: { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: X }] },
        })
        return res.statusCode === 200
      }, 60_000)
    } finally {
      await nodeLabel('--label-rm').catch(() => undefined)
    }
    const gone = await app.request({
      method: 'DELETE',
      url: `/v1/namespaces/${ns}/models/placed_1_0_0`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(gone.statusCode, 200, gone.body)
  })

  it("forwards what a task's runner prints to the server's log", { skip }, async () => {
    if ('skip' in found || t === undefined) return
    const launcher = new ServiceLauncher({
      swarm: found.swarm,
      local: found.engine,
      localNodeId: await selfNode(),
      owner: ownerOf(t.dataDir),
      image: () => found.image,
      command: (runtime) => [
        'sh',
        '-c',
        `echo task-says-hello >&2; exec node dist/runtime/worker-main.js ${runtime}`,
      ],
      readOnlyPaths: [],
      cpuOvercommit: 4,
      startTimeoutMs: 60_000,
      killGraceMs: 1000,
      maxFrameBytes: 1 << 30,
    })
    const lines: string[] = []
    const launched = await launcher.launch('onnx', undefined, (line) => lines.push(line))
    try {
      await eventually(() => lines.some((l) => l.endsWith('task-says-hello')), 15_000)
    } finally {
      await launched.worker.stop()
      await launched.cleaned
    }
  })

  it('undeploys: its service goes', { skip }, async () => {
    if ('skip' in found || t === undefined) return
    const res = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/boxed_1_0_0/undeploy`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(res.statusCode, 200, res.body)
    await eventually(async () => (await services()).length === 0, 30_000)
  })
})
