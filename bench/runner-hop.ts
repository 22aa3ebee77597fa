/**
 * What the hop to a model's runner costs, one request at a time: the same small CNN (28×28,
 * batch 1) run
 *   - in this process (`session.run`: no hop at all);
 *   - in a worker thread of this process (onnxruntime-node in a `worker_threads` Worker, the
 *     input transferred with `postMessage`, the output posted back): the cheapest hop there is;
 *   - in berth's own runner process (`dist/runtime/worker-main.js`, spoken to over its pipe with
 *     berth's frame protocol, as the server does).
 * For each: p50 and p99 of a call, and the CPU time per call of every process involved (this
 * process's threads, and the runner process). It is the floor under berth's c=1 latency that
 * running models in separate processes sets; the server's HTTP path comes on top.
 *
 *   npm run bench:runner-hop -- [seconds per cell]     (default 5)
 */
import { writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import * as ort from 'onnxruntime-node'
import { runnerEnvironment } from '../src/config/scheduler-config.js'
import { WorkerProcess } from '../src/scheduler/local/worker-process.js'
import { smallCnnModel } from '../test/fixtures/onnx-models.js'
import { tempDir } from '../test/helpers/temp-dir.js'
import { load, repeat } from './load.js'
import { cpuMicros } from './proc-cpu.js'

const RUNNER = fileURLToPath(new URL('../src/runtime/worker-main.js', import.meta.url))
const seconds = Number(process.argv[2] ?? 5)

/** The code of the worker thread: loads the model, answers each input with the output. */
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads')
const ort = require(workerData.ort)
ort.InferenceSession.create(workerData.model, {
  executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all',
}).then((session) => {
  parentPort.on('message', async (data) => {
    const out = await session.run({ x: new ort.Tensor('float32', data, [1, 1, 28, 28]) })
    const y = out[session.outputNames[0]].data
    parentPort.postMessage(y, [y.buffer])
  })
  parentPort.postMessage('ready')
})
`

interface Row {
  readonly label: string
  /** Latency of a call, ms. */
  readonly p50: number
  readonly p99: number
  readonly cpuUs: number
  readonly calls: number
}

/** Calls `call` one after another for `seconds`; latency percentiles and CPU per call. */
async function measure(
  label: string,
  call: () => Promise<unknown>,
  otherPids: readonly number[],
): Promise<Row> {
  const send = async () => {
    await call()
  }
  await repeat(send, 200, 1)
  const own = process.cpuUsage()
  const others = await cpuMicros(otherPids)
  const cell = await load(send, 1, seconds * 1000)
  const ownUsed = process.cpuUsage(own)
  const cpu = ownUsed.user + ownUsed.system + (await cpuMicros(otherPids)) - others
  const calls = cell.rps * seconds
  return { label, p50: cell.p50, p99: cell.p99, cpuUs: cpu / calls, calls }
}

async function main(): Promise<void> {
  const dir = await tempDir('berth-bench-hop-')
  const modelPath = join(dir.path, 'cnn.onnx')
  await writeFile(modelPath, smallCnnModel(1))
  const image = Float32Array.from({ length: 784 }, (_, i) => Math.cos(i))
  const rows: Row[] = []
  try {
    const session = await ort.InferenceSession.create(modelPath, {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    })
    const feeds = { x: new ort.Tensor('float32', image, [1, 1, 28, 28]) }
    rows.push(await measure('in this process: `session.run`', () => session.run(feeds), []))
    await session.release()

    const thread = new Worker(THREAD, {
      eval: true,
      workerData: { ort: fileURLToPath(import.meta.resolve('onnxruntime-node')), model: modelPath },
    })
    await new Promise((resolve) => thread.once('message', resolve))
    const viaThread = () =>
      new Promise((resolve) => {
        thread.once('message', resolve)
        const copy = image.slice()
        thread.postMessage(copy, [copy.buffer])
      })
    rows.push(await measure('a worker thread: `postMessage` both ways', viaThread, []))
    await thread.terminate()

    const runner = await WorkerProcess.start({
      entry: RUNNER,
      args: ['onnx'],
      startTimeoutMs: 10_000,
      killGraceMs: 1000,
      maxFrameBytes: 1 << 30,
      // What berth gives its runners.
      env: runnerEnvironment(process.env),
    })
    try {
      const loaded = await runner.call(
        { type: 'load', slot: 0, modelPath, intraOpThreads: 1 },
        10_000,
      )
      if (loaded.type !== 'loaded') throw new Error(`the runner answered ${loaded.type}`)
      const input = new Uint8Array(image.buffer)
      const viaProcess = async () => {
        const answer = await runner.call(
          {
            type: 'infer',
            slot: 0,
            inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1, 28, 28], data: input }],
            outputs: null,
          },
          10_000,
        )
        if (answer.type !== 'result') throw new Error(`the runner answered ${answer.type}`)
      }
      rows.push(
        await measure("berth's runner process: its frames over a pipe", viaProcess, [
          runner.pid as number,
        ]),
      )
    } finally {
      await runner.stop()
    }
  } finally {
    await dir.remove()
  }
  console.log(
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`,
  )
  console.log(`Small CNN 28×28, batch 1, one call at a time, ${seconds} s per row\n`)
  console.log('| Where the model runs | p50 (µs) | p99 (µs) | CPU per call (µs) | calls |')
  console.log('| --- | --- | --- | --- | --- |')
  for (const r of rows) {
    console.log(
      `| ${r.label} | ${(r.p50 * 1000).toFixed(0)} | ${(r.p99 * 1000).toFixed(0)} | ${r.cpuUs.toFixed(0)} | ${r.calls.toFixed(0)} |`,
    )
  }
}

await main()
