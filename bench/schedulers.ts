/**
 * The `local`, `docker` and `swarm` schedulers side by side, each on a fresh `berth serve` child
 * process:
 *   1. upload → `deployed` (`?wait=true`) for a 10 MB ONNX model (no spare runner on any, so
 *      each starts a runner: a process, a container, or a Swarm service's task);
 *   2. per-request latency at concurrency 1 on the tiny MLP of the README (JSON), the runner a
 *      child process, a container whose port is published on 127.0.0.1, or a task whose port is
 *      published in host mode on its node.
 *
 *   DOCKER_HOST=unix:///…/docker.sock npm run bench:schedulers -- [requests]   (default: 2000)
 *
 * The docker and swarm runs need an engine (DOCKER_HOST) holding the ONNX runner image
 * (BERTH_RUNTIME_IMAGE_ONNX, default berth-runtime-onnx:test: `.ci/run` builds it); swarm runs
 * where that engine is a Swarm manager (`.ci/engine.sh` makes a one-node swarm).
 */
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { SwarmEngine } from '../src/scheduler/swarm/swarm-engine.js'
import { deepMlpModel, mlpModel } from '../test/fixtures/onnx-models.js'
import { tarGzOf } from '../test/fixtures/tar-builder.js'
import { startBerthServe } from '../test/helpers/berth-process.js'
import { multipartBody } from '../test/helpers/multipart.js'
import { tempDir } from '../test/helpers/temp-dir.js'
import { expectOk, httpClient } from './http-client.js'

const KEY = 'sk_bench_schedulers_0123456789abc'
const requests = Number(process.argv[2] ?? 2000)
const ROUNDS = 5

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

async function uploadBody(name: string, model: Buffer, memoryGb: string) {
  return multipartBody([
    { name: 'name', value: name },
    { name: 'version', value: '1.0.0' },
    { name: 'model_format', value: 'onnx' },
    { name: 'memory_gb', value: memoryGb },
    { name: 'file', filename: 'm.tar.gz', content: await tarGzOf({ 'model.onnx': model }) },
  ])
}

async function main(): Promise<void> {
  const host = process.env.DOCKER_HOST
  if (host === undefined) throw new Error('DOCKER_HOST: the engine of the docker scheduler')
  const image = process.env.BERTH_RUNTIME_IMAGE_ONNX ?? 'berth-runtime-onnx:test'
  const dir = await tempDir('berth-bench-schedulers-')
  const big = await uploadBody('ten-mb', deepMlpModel([512, 2048, 768, 16], 3), '2')
  const tiny = await uploadBody('tiny-mlp', mlpModel(4, 8, 3, 7), '0.5')
  const x = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
    }),
  )
  const servers: {
    scheduler: string
    stop: () => Promise<unknown>
    client: ReturnType<typeof httpClient>
    deployMs: number
    times: number[]
  }[] = []
  const auth = { authorization: `Bearer ${KEY}` }
  const path = '/v1/namespaces/bench/models/tiny-mlp_1_0_0/infer'
  const headers = { ...auth, 'content-type': 'application/json' }
  try {
    const swarm = (await new SwarmEngine(host).info()).manager
    for (const scheduler of ['local', 'docker', ...(swarm ? ['swarm'] : [])]) {
      const server = await startBerthServe({
        BERTH_DATA_DIR: join(dir.path, scheduler),
        BERTH_BOOTSTRAP_API_KEY: KEY,
        BERTH_SPARE_RUNNERS: '0',
        BERTH_SCHEDULER: scheduler,
        BERTH_DOCKER_HOST: host,
        BERTH_RUNTIME_IMAGE_ONNX: image,
      })
      const client = httpClient(Number(new URL(server.url).port), 1)
      const entry = {
        scheduler,
        stop: () => server.stop(),
        client,
        deployMs: 0,
        times: [] as number[],
      }
      servers.push(entry)
      expectOk(
        await client.post('/v1/namespaces', Buffer.from('{"namespace_name":"bench"}'), headers),
      )
      const upload = async (body: typeof big) =>
        expectOk(
          await client.post('/v1/namespaces/bench/models?wait=true', body.payload, {
            ...auth,
            ...body.headers,
          }),
        )
      const started = performance.now()
      await upload(big)
      entry.deployMs = performance.now() - started
      await upload(tiny)
      for (let i = 0; i < 200; i++) expectOk(await client.post(path, x, headers))
    }
    // Both servers up at once, their rounds interleaved: the VM's drift hits them alike.
    for (let round = 0; round < ROUNDS; round++) {
      for (const entry of servers) {
        for (let i = 0; i < requests; i++) {
          const t0 = performance.now()
          expectOk(await entry.client.post(path, x, headers))
          entry.times.push(performance.now() - t0)
        }
      }
    }
    console.log(
      `${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 1024 ** 3)} GiB, Node ${process.version}; ${ROUNDS} × ${requests} requests at c=1`,
    )
    console.log('| scheduler | 10 MB ONNX upload → deployed (ms) | tiny MLP p50 (ms) | p99 (ms) |')
    console.log('| --- | --- | --- | --- |')
    for (const { scheduler, deployMs, times } of servers) {
      times.sort((p, q) => p - q)
      console.log(
        `| ${scheduler} | ${deployMs.toFixed(0)} | ${percentile(times, 50).toFixed(3)} | ${percentile(times, 99).toFixed(3)} |`,
      )
    }
  } finally {
    for (const { client, stop } of servers) {
      client.close()
      await stop()
    }
    await dir.remove()
  }
}

await main()
