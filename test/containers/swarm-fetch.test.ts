import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { OWNER_LABEL, ownerOf } from '../../src/scheduler/runner-containers.js'
import { mlpModel, referenceMlp } from '../fixtures/onnx-models.js'
import { makeTorchFixtures, torchSkipReason } from '../fixtures/torch-fixtures.js'
import {
  dockerOk,
  engineForTests,
  holdSwarmNode,
  RUNTIME_IMAGE_ONNX,
  RUNTIME_IMAGE_TORCH,
} from '../helpers/docker.js'
import { type Forwarder, forwardTcp } from '../helpers/forwarder.js'
import { assertClose } from '../helpers/inference.js'
import { eventually } from '../helpers/processes.js'
import { s3ForTests, testBucket } from '../helpers/services.js'
import { tempDir } from '../helpers/temp-dir.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, uploadAndWait } from '../helpers/uploads.js'

/**
 * BERTH_RUNNER_FILES=fetch: Swarm tasks see none of berth's folders (as on a node without a
 * shared filesystem); each runner downloads its model's archive from S3 by a presigned URL,
 * checks it and unpacks it in a volume of its own, removed with the task.
 *
 * radosgw listens on 127.0.0.1, out of the tasks' reach: a forwarder on the Swarm's gateway
 * bridge (an address of this machine's that only its containers use) stands for the S3 address
 * the nodes would have, and BERTH_S3_RUNNER_ENDPOINT names it.
 */

interface MountView {
  Type: string
  Target: string
  Source?: string
}

async function mountsOf(service: string): Promise<MountView[]> {
  const stdout = await dockerOk(['service', 'inspect', service])
  const [spec] = JSON.parse(stdout) as {
    Spec: { TaskTemplate: { ContainerSpec: { Mounts?: MountView[]; Env?: string[] } } }
  }[]
  return spec?.Spec.TaskTemplate.ContainerSpec.Mounts ?? []
}

async function volumes(): Promise<string[]> {
  return (await dockerOk(['volume', 'ls', '--quiet'])).split('\n').filter((v) => v !== '')
}

describe('BERTH_SCHEDULER=swarm with BERTH_RUNNER_FILES=fetch: runners fetch from S3', async () => {
  const found = await engineForTests(RUNTIME_IMAGE_ONNX, { swarm: true })
  const s3 = s3ForTests()
  const torchSkip = await torchSkipReason()
  const skip = 'skip' in found ? found.skip : 'skip' in s3 ? s3.skip : undefined
  let t: TestApp | undefined
  let forwarder: Forwarder | undefined
  let fixtures: Awaited<ReturnType<typeof tempDir>> | undefined
  let volumesBefore: string[] = []
  let ns = ''
  const services = async (): Promise<string[]> =>
    'skip' in found || t === undefined
      ? []
      : found.swarm.listServices(OWNER_LABEL, ownerOf(t.dataDir))

  let releaseNode: (() => Promise<void>) | undefined
  before(async () => {
    if ('skip' in found || 'skip' in s3) return
    // Another file drains the swarm's one node: not while this one uses it.
    releaseNode = await holdSwarmNode()
    volumesBefore = await volumes()
    const gateway = gatewayOf(
      JSON.parse(
        await dockerOk([
          'network',
          'inspect',
          'docker_gwbridge',
          '--format',
          '{{json .IPAM.Config}}',
        ]),
      ),
    )
    const server = new URL(s3.endpoint)
    forwarder = await forwardTcp(gateway, { host: server.hostname, port: Number(server.port) })
    t = await startTestApp({
      BERTH_SCHEDULER: 'swarm',
      BERTH_DOCKER_HOST: found.host,
      BERTH_RUNTIME_IMAGE_ONNX: found.image,
      BERTH_RUNTIME_IMAGE_TORCH: RUNTIME_IMAGE_TORCH,
      BERTH_STORAGE_URL: `s3://${testBucket()}/archives`,
      BERTH_S3_ENDPOINT: s3.endpoint,
      BERTH_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      BERTH_RUNNER_FILES: 'fetch',
      BERTH_S3_RUNNER_ENDPOINT: `http://${gateway}:${forwarder.port}`,
    })
    ns = await createNamespace(t, 'fetching')
  })
  after(async () => {
    try {
      await t?.close()
      if (t !== undefined) {
        assert.deepEqual(await services(), [], 'closing the server removed its services')
        // Each task's scratch volume went with its container.
        await eventually(async () => {
          const now = await volumes()
          return now.every((v) => volumesBefore.includes(v))
        }, 30_000)
      }
    } finally {
      await forwarder?.close()
      await fixtures?.remove()
      await releaseNode?.()
    }
  })

  it('serves an ONNX model its runner fetched, with no folder of the server mounted', {
    skip,
  }, async () => {
    if ('skip' in found || t === undefined) return
    const up = await uploadAndWait(
      t,
      ns,
      { name: 'fetched', model_format: 'onnx', memory_gb: '0.5' },
      // A wrapping folder, stripped as at upload: the runner's copy must match berth's.
      { 'fetched/model.onnx': mlpModel(4, 8, 3, 7) },
    )
    assert.equal(up.deployment_status, 'deployed', JSON.stringify(up))
    const [service, ...others] = await services()
    assert.equal(others.length, 0, 'the upload check ran here, not in a service')
    assert.deepEqual(
      (await mountsOf(service as string)).map((m) => `${m.Type} ${m.Target}`).sort(),
      ['tmpfs /tmp', 'volume /scratch'],
      'no bind mount: nothing of the data dir',
    )
    const res = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/fetched_1_0_0/infer`,
      key: BOOTSTRAP_KEY,
      body: { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] },
    })
    assert.equal(res.statusCode, 200, res.body)
    assertClose(res.json().outputs[0].data as number[], referenceMlp([1, 2, 3, 4], 1, 4, 8, 3, 7))
  })

  it('serves TorchScript the python runner fetched (through the Node fetcher in its image)', {
    skip: skip ?? torchSkip,
  }, async () => {
    if ('skip' in found || t === undefined) return
    fixtures = await tempDir()
    await makeTorchFixtures(fixtures.path)
    const expected = JSON.parse(
      await readFile(join(fixtures.path, 'mlp_scripted.expected.json'), 'utf8'),
    ) as { input: number[]; output: number[] }
    const up = await uploadAndWait(
      t,
      ns,
      { name: 'scripted', model_format: 'pytorch', memory_gb: '2' },
      { 'model.pt': await readFile(join(fixtures.path, 'mlp_scripted.pt')) },
    )
    assert.equal(up.deployment_status, 'deployed', JSON.stringify(up))
    const res = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/scripted_1_0_0/infer`,
      key: BOOTSTRAP_KEY,
      body: { inputs: [{ name: 'x', shape: [2, 16], datatype: 'FP32', data: expected.input }] },
    })
    assert.equal(res.statusCode, 200, res.body)
    assertClose(res.json().outputs[0].data as number[], expected.output)
  })

  it('undeploys: the services and their scratch volumes go', { skip }, async () => {
    if ('skip' in found || t === undefined) return
    const app = t
    for (const model of ['fetched_1_0_0', 'scripted_1_0_0']) {
      const res = await app.request({
        method: 'POST',
        url: `/v1/namespaces/${ns}/models/${model}/undeploy`,
        key: BOOTSTRAP_KEY,
      })
      assert.ok([200, 404].includes(res.statusCode), res.body)
    }
    await eventually(async () => (await services()).length === 0, 30_000)
    await eventually(async () => (await volumes()).every((v) => volumesBefore.includes(v)), 30_000)
  })
})

/**
 * The IPv4 gateway of a bridge's IPAM config. A fresh engine may list the subnet without its
 * gateway (a CI run saw an empty one): the bridge's gateway is then the subnet's first address.
 */
function gatewayOf(config: ReadonlyArray<{ Subnet?: string; Gateway?: string }>): string {
  const v4 = config.find((c) => c.Subnet !== undefined && /^\d+\.\d+\.\d+\.\d+\//.test(c.Subnet))
  if (v4?.Gateway) return v4.Gateway
  const base = v4?.Subnet?.split('/')[0]?.split('.').map(Number)
  if (base === undefined || base.length !== 4) {
    throw new Error(`docker_gwbridge has no IPv4 subnet: ${JSON.stringify(config)}`)
  }
  return [base[0], base[1], base[2], (base[3] ?? 0) + 1].join('.')
}
