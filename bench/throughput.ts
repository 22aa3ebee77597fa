/**
 * Throughput benchmark: batch-1 requests at concurrency 1, 16 and 64, for three models, against
 *   - raw onnxruntime-node `session.run` in this process, one request after another (the floor
 *     a server adds to; concurrency does not apply), measured first and again on each side of
 *     every berth c=64 cell, which is compared with the raw figures beside it;
 *   - berth (`berth serve` as a child process, JSON tensors) with dynamic batching (the default),
 *     without (`max_batch_size` 1), with batching over two replicas, with queue delays of
 *     200 and 1000 µs, and with the tensors as binary data both ways (the binary tensor
 *     extension: inputs after a JSON header, `binary_data_output`), one replica and two;
 *   - a naive Fastify + onnxruntime-node server running the model on its event loop (what a user
 *     would write by hand; bench/naive-server.ts, also a child process).
 * Models (dynamic batch, one intra-op thread everywhere): an MLP 512→2048→2048→2048→16; a small
 * CNN on 28×28 images; a MiniLM-size BERT encoder (6 layers, hidden 384; random weights,
 * converted by berth's converter), 16 tokens per request.
 *
 *   npm run bench:throughput -- [seconds per cell] [model filter, e.g. MLP]     (default: 5, all)
 *   BENCH_BERTH_BIN=/tmp/before/bin/berth …    (another build of berth measured: berth-under-test.ts)
 */
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as ort from 'onnxruntime-node'
import { encoderConfig, encoderToOnnx } from '../src/conversion/encoder-to-onnx.js'
import type { WeightsReader, WeightTensor } from '../src/formats/weights-reader.js'
import { DEFAULT_MAX_BATCH_SIZE } from '../src/inference/inference-service.js'
import { deepMlpModel, prng, smallCnnModel } from '../test/fixtures/onnx-models.js'
import { tarGzOf } from '../test/fixtures/tar-builder.js'
import { startBerthServe } from '../test/helpers/berth-process.js'
import { binaryBody } from '../test/helpers/inference.js'
import { multipartBody } from '../test/helpers/multipart.js'
import { tempDir } from '../test/helpers/temp-dir.js'
import { BERTH_UNDER_TEST, berthUnderTestLine } from './berth-under-test.js'
import { expectOk, httpClient } from './http-client.js'
import { type Cell, load } from './load.js'
import { cpuMicros } from './proc-cpu.js'
import { childrenOf } from './proc-memory.js'

const KEY = 'sk_bench_throughput_key_0123456789'
const DIMS = [512, 2048, 2048, 2048, 16]

interface BenchModel {
  readonly label: string
  readonly onnx: Buffer
  /** One batch-1 request's inputs: name, datatype, shape, values. */
  readonly inputs: ReadonlyArray<{
    name: string
    datatype: 'FP32' | 'INT64'
    shape: number[]
    data: number[]
  }>
}

/** MiniLM-size BERT with random weights (no torch needed), converted as berth does. */
async function minilm(): Promise<Buffer> {
  const config = {
    model_type: 'bert',
    hidden_size: 384,
    num_attention_heads: 12,
    num_hidden_layers: 6,
    intermediate_size: 1536,
    hidden_act: 'gelu',
    layer_norm_eps: 1e-12,
    vocab_size: 30522,
    max_position_embeddings: 512,
    type_vocab_size: 2,
  }
  const shapes: Record<string, number[]> = {
    'embeddings.word_embeddings.weight': [30522, 384],
    'embeddings.position_embeddings.weight': [512, 384],
    'embeddings.token_type_embeddings.weight': [2, 384],
    'embeddings.LayerNorm.weight': [384],
    'embeddings.LayerNorm.bias': [384],
  }
  for (let i = 0; i < 6; i++) {
    const p = `encoder.layer.${i}.`
    for (const n of [
      'attention.self.query',
      'attention.self.key',
      'attention.self.value',
      'attention.output.dense',
    ]) {
      shapes[`${p}${n}.weight`] = [384, 384]
      shapes[`${p}${n}.bias`] = [384]
    }
    shapes[`${p}intermediate.dense.weight`] = [1536, 384]
    shapes[`${p}intermediate.dense.bias`] = [1536]
    shapes[`${p}output.dense.weight`] = [384, 1536]
    shapes[`${p}output.dense.bias`] = [384]
    for (const n of ['attention.output.LayerNorm', 'output.LayerNorm']) {
      shapes[`${p}${n}.weight`] = [384]
      shapes[`${p}${n}.bias`] = [384]
    }
  }
  const random = prng(7)
  const tensors: WeightTensor[] = Object.entries(shapes).map(([name, shape]) => ({
    name,
    dtype: 'F32',
    shape,
    byteLength: shape.reduce((a, b) => a * b, 1) * 4,
  }))
  const reader: WeightsReader = {
    tensors,
    tensor: (name) => tensors.find((t) => t.name === name) as WeightTensor,
    bytes: async (name) => {
      const n = (shapes[name] ?? []).reduce((a, b) => a * b, 1)
      return Buffer.from(Float32Array.from({ length: n }, () => (random() - 0.5) * 0.1).buffer)
    },
    stream: async () => {
      throw new Error('not used')
    },
    close: () => undefined,
  }
  return encoderToOnnx(encoderConfig(config), reader)
}
const CONCURRENCY = [1, 16, 64]
const NAIVE = fileURLToPath(new URL('./naive-server.js', import.meta.url))
const seconds = Number(process.argv[2] ?? 5)
/** Only the models whose label contains this (e.g. `MLP`); all when unset. */
const only = process.argv[3]

/** Sends `body` to `path` again and again, over up to 128 kept-alive connections. */
function poster(port: number, path: string, headers: Record<string, string>, body: Buffer) {
  const client = httpClient(port, 128)
  const send = async () => {
    expectOk(await client.post(path, body, { 'content-type': 'application/json', ...headers }))
  }
  return { send, close: client.close }
}

/** The model's request with the binary tensor extension: its inputs and outputs as raw bytes. */
function binaryRequestOf(bench: BenchModel): { body: Buffer; headers: Record<string, string> } {
  const tensors = bench.inputs.map((i) => Buffer.from(typedValues(i, 1).buffer))
  return binaryBody(
    {
      inputs: bench.inputs.map((i, k) => ({
        name: i.name,
        datatype: i.datatype,
        shape: i.shape,
        parameters: { binary_data_size: tensors[k]?.length },
      })),
      parameters: { binary_data_output: true },
    },
    ...tensors,
  )
}

async function main(): Promise<void> {
  const ids = Array.from({ length: 16 }, (_, i) => 101 + ((i * 7919) % 30000))
  const models: BenchModel[] = [
    {
      label: `MLP ${DIMS.join('→')}`,
      onnx: deepMlpModel(DIMS, 1),
      inputs: [
        {
          name: 'x',
          datatype: 'FP32',
          shape: [1, DIMS[0] as number],
          data: Array.from({ length: DIMS[0] as number }, (_, i) => Math.sin(i)),
        },
      ],
    },
    {
      label: 'small CNN, 28×28',
      onnx: smallCnnModel(1),
      inputs: [
        {
          name: 'x',
          datatype: 'FP32',
          shape: [1, 1, 28, 28],
          data: Array.from({ length: 784 }, (_, i) => Math.cos(i)),
        },
      ],
    },
    {
      label: 'MiniLM-size BERT, 16 tokens',
      onnx: await minilm(),
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [1, 16], data: ids },
        { name: 'attention_mask', datatype: 'INT64', shape: [1, 16], data: ids.map(() => 1) },
        { name: 'token_type_ids', datatype: 'INT64', shape: [1, 16], data: ids.map(() => 0) },
      ],
    },
  ]
  const tables: string[] = []
  for (const model of models) {
    if (only === undefined || model.label.includes(only)) tables.push(await benchModel(model))
  }
  console.log(
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`,
  )
  console.log(berthUnderTestLine())
  console.log(`Batch-1 JSON requests, ${seconds} s per cell\n`)
  console.log(tables.join('\n'))
}

interface BerthVariant {
  readonly name: string
  readonly label: string
  /** Upload form fields. */
  readonly fields: Readonly<Record<string, string>>
  /** Send the inputs and ask for every output as binary data, instead of JSON numbers. */
  readonly binary?: boolean
}

/** berth's settings compared: each model is uploaded once per variant. */
const BERTH_VARIANTS: readonly BerthVariant[] = [
  { name: 'batched', label: 'berth, dynamic batching (default)', fields: {} },
  { name: 'unbatched', label: 'berth, `max_batch_size` 1', fields: { max_batch_size: '1' } },
  { name: 'replicas', label: 'berth, dynamic batching, `replicas` 2', fields: { replicas: '2' } },
  {
    name: 'delay200',
    label: 'berth, dynamic batching, `max_queue_delay_us` 200',
    fields: { max_queue_delay_us: '200' },
  },
  {
    name: 'delay1000',
    label: 'berth, dynamic batching, `max_queue_delay_us` 1000',
    fields: { max_queue_delay_us: '1000' },
  },
  {
    name: 'binaryout',
    label: 'berth, dynamic batching, tensors as binary data',
    fields: {},
    binary: true,
  },
  {
    name: 'replicasbinaryout',
    label: 'berth, dynamic batching, `replicas` 2, tensors as binary data',
    fields: { replicas: '2' },
    binary: true,
  },
]

/** This process's CPU time (user + system), in µs. */
function ownCpuMicros(): number {
  const { user, system } = process.cpuUsage()
  return user + system
}

/** A batch-1 input's values as its datatype's typed array, repeated `rows` times. */
function typedValues(
  input: BenchModel['inputs'][number],
  rows: number,
): BigInt64Array | Float32Array {
  const data = Array.from({ length: rows }, () => input.data).flat()
  return input.datatype === 'INT64' ? BigInt64Array.from(data.map(BigInt)) : Float32Array.from(data)
}

/** The model's inputs for raw `session.run`, `rows` copies of the request's in one batch. */
function feedsOf(bench: BenchModel, rows: number): Record<string, ort.Tensor> {
  return Object.fromEntries(
    bench.inputs.map((i) => [
      i.name,
      new ort.Tensor(typedValues(i, rows), [rows, ...i.shape.slice(1)]),
    ]),
  )
}

/** Rows per second raw `session.run` reaches on batches of `rows` (the request's data repeated). */
async function batchCeiling(
  session: ort.InferenceSession,
  bench: BenchModel,
  rows: number,
  durationMs: number,
): Promise<number> {
  const feeds = feedsOf(bench, rows)
  for (let i = 0; i < 5; i++) await session.run(feeds)
  const cell = await load(
    async () => {
      await session.run(feeds)
    },
    1,
    durationMs,
  )
  return cell.rps * rows
}

/** One model's table: raw, berth with and without batching, naive; c = 1, 16, 64. */
async function benchModel(bench: BenchModel): Promise<string> {
  const dir = await tempDir('berth-bench-throughput-')
  const model = bench.onnx
  const modelPath = join(dir.path, 'model.onnx')
  await writeFile(modelPath, model)
  const body = Buffer.from(JSON.stringify({ inputs: bench.inputs }))
  const durationMs = seconds * 1000
  const rows: Array<[string, ...string[]]> = []
  const cells = (results: Cell[]) =>
    results.map((r) => `${r.rps.toFixed(0)} (p50 ${r.p50.toFixed(1)}, p99 ${r.p99.toFixed(1)})`)

  // Raw, sequential, in-process.
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  })
  const feeds = feedsOf(bench, 1)
  for (let i = 0; i < 20; i++) await session.run(feeds)
  // Raw is measured again on each side of every berth c=64 cell: this VM's speed moves by up
  // to 2× within a run, and a ratio is only as good as the raw figure next to it.
  const rawCell = () =>
    load(
      async () => {
        await session.run(feeds)
      },
      1,
      durationMs,
    )
  const raws: Cell[] = [await rawCell()]
  const ratios: string[] = []

  // berth, with and without dynamic batching.
  const server = await startBerthServe(
    {
      BERTH_DATA_DIR: join(dir.path, 'data'),
      BERTH_BOOTSTRAP_API_KEY: KEY,
      BERTH_NODE_CPUS: '2',
    },
    BERTH_UNDER_TEST,
  )
  try {
    const auth = { authorization: `Bearer ${KEY}` }
    await fetch(`${server.url}/v1/namespaces`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ namespace_name: 'bench' }),
    })
    const archive = await tarGzOf({ 'model.onnx': model })
    for (const variant of BERTH_VARIANTS) {
      const { payload, headers } = multipartBody([
        { name: 'name', value: `mlp-${variant.name}` },
        { name: 'version', value: '1.0.0' },
        { name: 'model_format', value: 'onnx' },
        { name: 'memory_gb', value: '2' },
        ...Object.entries(variant.fields).map(([n, value]) => ({ name: n, value })),
        { name: 'file', filename: 'm.tar.gz', content: archive },
      ])
      const res = await fetch(`${server.url}/v1/namespaces/bench/models?wait=true`, {
        method: 'POST',
        headers: { ...auth, ...headers },
        body: payload,
      })
      const answer = (await res.json()) as { deployment_status?: string }
      if (answer.deployment_status !== 'deployed') throw new Error(JSON.stringify(answer))
    }
    const port = Number(new URL(server.url).port)
    const binaryRequest = binaryRequestOf(bench)
    for (const { name, label, binary } of BERTH_VARIANTS) {
      const path = `/v1/namespaces/bench/models/mlp-${name}_1_0_0/infer`
      const client =
        binary === true
          ? poster(port, path, { ...auth, ...binaryRequest.headers }, binaryRequest.body)
          : poster(port, path, auth, body)
      for (let i = 0; i < 50; i++) await client.send()
      const results: Cell[] = []
      for (const c of CONCURRENCY) {
        if (c !== CONCURRENCY.at(-1)) {
          results.push(await load(client.send, c, durationMs))
          continue
        }
        const before = await rawCell()
        // Where the CPU goes in this cell: berth's server, its runners, and this process (the
        // load generator); µs per request, and the share of the machine's cores.
        const runners = await childrenOf(server.child.pid as number)
        const cpuAt = async () => [
          await cpuMicros([server.child.pid as number]),
          await cpuMicros(runners),
          ownCpuMicros(),
        ]
        const cpuBefore = await cpuAt()
        const cell = await load(client.send, c, durationMs)
        const cpu = (await cpuAt()).map((micros, i) => micros - (cpuBefore[i] ?? 0))
        const after = await rawCell()
        raws.push(before, after)
        results.push(cell)
        const beside = (before.rps + after.rps) / 2
        const served = cell.rps * seconds
        const [serverUs, runnersUs, clientUs] = cpu.map((micros) => (micros / served).toFixed(0))
        const busy = cpu.reduce((a, b) => a + b, 0) / (durationMs * 1000 * cpus().length)
        ratios.push(
          `${label}, c=${c}: ${(cell.rps / beside).toFixed(2)}× raw ` +
            `(${cell.rps.toFixed(0)} req/s; raw ${before.rps.toFixed(0)} before, ${after.rps.toFixed(0)} after); ` +
            `CPU µs/request: server ${serverUs}, runners ${runnersUs}, load generator ${clientUs}; ` +
            `${(busy * 100).toFixed(0)}% of ${cpus().length} cores busy`,
        )
      }
      client.close()
      rows.push([label, ...cells(results)])
    }
  } finally {
    await server.stop()
  }
  // The runner's ceiling: raw `session.run` on full batches, rows per second.
  const fullBatch = await batchCeiling(session, bench, DEFAULT_MAX_BATCH_SIZE, durationMs)
  await session.release()
  rows.push([
    `raw \`session.run\` on batches of ${DEFAULT_MAX_BATCH_SIZE} rows, in-process (the runner's ceiling, rows/s)`,
    `${fullBatch.toFixed(0)} rows/s`,
    '—',
    '—',
  ])
  const rawRates = raws.map((r) => r.rps).sort((a, b) => a - b)
  const rawMedian = rawRates[Math.floor(rawRates.length / 2)] ?? Number.NaN
  const rawRow = raws[0] as Cell
  rows.unshift([
    `raw \`session.run\`, sequential, in-process (${raws.length} runs: ${rawRates[0]?.toFixed(0)}–${rawRates.at(-1)?.toFixed(0)}, median ${rawMedian.toFixed(0)} req/s)`,
    ...cells([rawRow]),
    '—',
    '—',
  ])

  // The naive server.
  const naive = spawn(process.execPath, [NAIVE, modelPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  try {
    const port = await new Promise<number>((resolve, reject) => {
      naive.stdout.on('data', (chunk: Buffer) => {
        const match = /listening (\d+)/.exec(String(chunk))
        if (match?.[1] !== undefined) resolve(Number(match[1]))
      })
      naive.once('exit', () => reject(new Error('the naive server exited')))
    })
    const client = poster(port, '/infer', {}, body)
    for (let i = 0; i < 50; i++) await client.send()
    const results: Cell[] = []
    for (const c of CONCURRENCY) results.push(await load(client.send, c, durationMs))
    client.close()
    rows.push(['naive Fastify + onnxruntime-node, on the event loop', ...cells(results)])
  } finally {
    naive.kill('SIGKILL')
  }

  await dir.remove()
  return [
    `${bench.label}:\n`,
    '| Server | c=1 req/s (ms) | c=16 req/s (ms) | c=64 req/s (ms) |',
    '| --- | --- | --- | --- |',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    '',
    'berth against raw measured beside it (the mean of the raw runs just before and after):',
    '',
    ...ratios.map((line) => `- ${line}`),
    '',
  ].join('\n')
}

await main()
