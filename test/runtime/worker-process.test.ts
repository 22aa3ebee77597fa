import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { isBerthError } from '../../src/errors/berth-error.js'
import type { ErrorCode } from '../../src/errors/error-codes.js'
import { RUNNER_PROTOCOL_VERSION } from '../../src/runtime/worker-protocol.js'
import { TORCH_WORKER } from '../../src/scheduler/local/torch-python.js'
import {
  WorkerProcess,
  type WorkerProcessOptions,
} from '../../src/scheduler/local/worker-process.js'
import { mlpModel, referenceMlp } from '../fixtures/onnx-models.js'
import { SYSTEM_PYTHON, torchSkipReason } from '../fixtures/torch-fixtures.js'
import { eventually } from '../helpers/processes.js'
import { tempDir } from '../helpers/temp-dir.js'

const MISBEHAVING = fileURLToPath(
  new URL('../fixtures/workers/misbehaving-runner.js', import.meta.url),
)
const RUNNER = fileURLToPath(new URL('../../src/runtime/worker-main.js', import.meta.url))
const OPTIONS = { startTimeoutMs: 5000, killGraceMs: 500, maxFrameBytes: 1 << 30 }

function isGone(pid: number | undefined): boolean {
  try {
    process.kill(pid ?? 0, 0)
    return false
  } catch {
    return true
  }
}

const f32 = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer)

describe('runner processes: failure modes', () => {
  const start = (mode: string, startTimeoutMs = OPTIONS.startTimeoutMs) =>
    WorkerProcess.start({ ...OPTIONS, startTimeoutMs, entry: MISBEHAVING, args: [mode] })
  const infer = {
    type: 'infer',
    slot: 0,
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: f32([1]) }],
    outputs: null,
  } as const

  it('answers requests by id, the tensors as raw bytes', async () => {
    const worker = await start('echo')
    const calls = await Promise.all(
      [1, 2, 3].map((v) =>
        worker.call({ ...infer, inputs: [{ ...infer.inputs[0], data: f32([v]) }] }, 2000),
      ),
    )
    assert.deepEqual(
      calls.map((m) =>
        m.type === 'result'
          ? new Float32Array(Uint8Array.from(m.outputs[0]?.data ?? []).buffer)[0]
          : -1,
      ),
      [1, 2, 3],
    )
    await worker.stop()
    assert.ok(isGone(worker.pid))
  })

  const failures: ReadonlyArray<readonly [string, 'start' | 'call', ErrorCode]> = [
    ['crash-on-start', 'start', 'runner_crashed'],
    ['hang-on-start', 'start', 'runner_start_timeout'],
    ['crash-mid-request', 'call', 'runner_crashed'],
    ['hang-mid-request', 'call', 'runner_timeout'],
    ['bad-message', 'call', 'runner_protocol_error'],
    // A runner may send only the codes of model and runtime failures: not one that walks the
    // prototype of the catalog, nor one that would answer 401 for it.
    ['forge-constructor-on-infer', 'call', 'runner_protocol_error'],
    ['forge-__proto__-on-infer', 'call', 'runner_protocol_error'],
    ['forge-api_key_invalid-on-infer', 'call', 'runner_protocol_error'],
    ['forge-runner_protocol_error-on-infer', 'call', 'runner_protocol_error'],
    ['protocol-1', 'start', 'runner_protocol_error'],
    ['protocol-none', 'start', 'runner_protocol_error'],
  ]
  for (const [mode, when, code] of failures) {
    it(`${mode}: ${code}, and no process is left`, async () => {
      if (when === 'start') {
        // A short bound only where the timeout is the point: a crash must win on a busy machine.
        const bound = code === 'runner_start_timeout' ? 500 : OPTIONS.startTimeoutMs
        await assert.rejects(start(mode, bound), (err) => isBerthError(err, code))
        return
      }
      const worker = await start(mode)
      try {
        await assert.rejects(worker.call(infer, 500), (err) => isBerthError(err, code))
        // Later calls fail the same way at once; the process is gone.
        await assert.rejects(worker.call(infer, 500), (err) => isBerthError(err, code))
      } finally {
        // Also when an assertion failed: a runner left alive would hold the test process.
        await worker.stop()
      }
      assert.ok(isGone(worker.pid))
    })
  }

  it('refuses a runner speaking another protocol version, saying which, and ends it', async () => {
    const dir = await tempDir()
    try {
      const pidLog = join(dir.path, 'pids')
      await assert.rejects(
        WorkerProcess.start({ ...OPTIONS, entry: MISBEHAVING, args: ['protocol-1', pidLog] }),
        (err) =>
          isBerthError(err, 'runner_protocol_error') &&
          err.details?.runner_protocol === 1 &&
          err.details?.expected_protocol === RUNNER_PROTOCOL_VERSION,
      )
      const pid = Number((await readFile(pidLog, 'utf8')).trim())
      assert.ok(pid > 0)
      await eventually(() => isGone(pid))
    } finally {
      await dir.remove()
    }
  })

  it('says when it is idle: at once with nothing pending, else when the last answer comes', async () => {
    const worker = await start('busy-on-infer')
    try {
      await worker.idle(0)
      // Busy for 300 ms: a short wait gives up with the request still pending.
      const call = worker.call(infer, 5000)
      await worker.idle(10)
      assert.equal(worker.inFlight, 1)
      // Woken by the answer, not by its own bound: a minute would outlast the sentinel.
      const woken = await Promise.race([
        worker.idle(60_000).then(() => 'idle'),
        delay(10_000, 'still waiting', { ref: false }),
      ])
      assert.equal(woken, 'idle')
      assert.equal(worker.inFlight, 0)
      assert.equal((await call).type, 'result')
    } finally {
      await worker.stop()
    }
  })

  it('kills a runner that ignores SIGTERM', async () => {
    const worker = await start('ignore-sigterm')
    const exit = await worker.stop()
    assert.equal(exit.signal, 'SIGKILL')
    assert.ok(isGone(worker.pid))
  })
})

describe('runner processes: liveness while idle', async () => {
  const torchSkip = await torchSkipReason()
  const PING = { intervalMs: 20, timeoutMs: 150 }
  const echo = {
    type: 'infer',
    slot: 0,
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: f32([1]) }],
    outputs: null,
  } as const
  const start = (mode: string) =>
    WorkerProcess.start({ ...OPTIONS, entry: MISBEHAVING, args: [mode], ping: PING })

  it('kills a runner that does not answer a ping (runner_unresponsive), though it served', async () => {
    const worker = await start('ignore-ping')
    assert.equal((await worker.call(echo, 2000)).type, 'result')
    const exit = await worker.exited
    assert.equal(exit.signal, 'SIGKILL')
    assert.ok(isBerthError(worker.failure, 'runner_unresponsive'))
    assert.equal(worker.failure?.details?.ping_timeout_ms, PING.timeoutMs)
    await assert.rejects(worker.call(echo, 500), (err) => isBerthError(err, 'runner_unresponsive'))
    assert.ok(isGone(worker.pid))
  })

  it('keeps a runner that answers, across many pings', async () => {
    const worker = await start('echo')
    try {
      // Ten intervals or more: every ping answered in time, or the runner would be gone.
      await new Promise((resolve) => setTimeout(resolve, 10 * PING.intervalMs + PING.timeoutMs))
      assert.equal(worker.failure, undefined)
      assert.equal((await worker.call(echo, 2000)).type, 'result')
    } finally {
      await worker.stop()
    }
  })

  it('does not ping a runner busy with a request, which could not answer', async () => {
    // The runner computes for 300 ms, twice the pong deadline, without reading its channel.
    const worker = await start('busy-on-infer')
    try {
      for (let i = 0; i < 2; i++) assert.equal((await worker.call(echo, 5000)).type, 'result')
      assert.equal(worker.failure, undefined)
    } finally {
      await worker.stop()
    }
  })

  /**
   * Lets a real runner through ten pings, then calls it: it is still there, and refuses the call
   * (no model loaded) with a code a runner may send.
   */
  async function answersPingsThenServes(
    runner: Partial<WorkerProcessOptions> & Pick<WorkerProcessOptions, 'entry'>,
  ) {
    const worker = await WorkerProcess.start({ ...OPTIONS, ...runner, ping: PING })
    try {
      await new Promise((resolve) => setTimeout(resolve, 10 * PING.intervalMs + PING.timeoutMs))
      assert.equal(worker.failure, undefined)
      await assert.rejects(worker.call(echo, 5000), (err) => isBerthError(err, 'model_load_failed'))
      assert.equal(worker.failure, undefined)
    } finally {
      await worker.stop()
    }
  }

  it("berth's own runner answers pings, and serves after them", () =>
    answersPingsThenServes({ entry: RUNNER, args: ['onnx'] }))

  it(
    'the python torch runner shakes hands with this protocol and answers pings',
    {
      skip: torchSkip,
    },
    () =>
      answersPingsThenServes({
        entry: TORCH_WORKER,
        executable: SYSTEM_PYTHON,
        startTimeoutMs: 60_000,
      }),
  )
})

describe('runner processes: ONNX Runtime', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let modelPath: string
  before(async () => {
    dir = await tempDir()
    modelPath = join(dir.path, 'model.onnx')
    await writeFile(modelPath, mlpModel(4, 8, 3, 7))
  })
  after(() => dir.remove())

  it('loads an ONNX model, describes it, and runs it like a reference MLP', async () => {
    const worker = await WorkerProcess.start({ ...OPTIONS, entry: RUNNER, args: ['onnx'] })
    try {
      const loaded = await worker.call(
        { type: 'load', slot: 0, modelPath, intraOpThreads: 1 },
        10_000,
      )
      assert.equal(loaded.type, 'loaded')
      if (loaded.type !== 'loaded') return
      assert.deepEqual(loaded.inputs, [{ name: 'x', datatype: 'FP32', shape: ['batch', 4] }])
      assert.deepEqual(loaded.outputs, [{ name: 'y', datatype: 'FP32', shape: ['batch', 3] }])

      const x = [0.5, -1, 2, 0.25, 1, 1, 1, 1]
      const result = await worker.call(
        {
          type: 'infer',
          slot: 0,
          inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: f32(x) }],
          outputs: null,
        },
        10_000,
      )
      assert.equal(result.type, 'result')
      if (result.type !== 'result') return
      const [y] = result.outputs
      assert.deepEqual(y?.shape, [2, 3])
      const got = Array.from(new Float32Array(Uint8Array.from(y?.data ?? []).buffer))
      const want = referenceMlp(x, 2, 4, 8, 3, 7)
      for (let i = 0; i < want.length; i++)
        assert.ok(Math.abs((got[i] ?? Number.NaN) - (want[i] ?? 0)) < 1e-5)

      await assert.rejects(
        worker.call(
          {
            type: 'infer',
            slot: 0,
            inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 5], data: f32([1, 2, 3, 4, 5]) }],
            outputs: null,
          },
          10_000,
        ),
        (err) => isBerthError(err, 'inference_failed'),
      )
      // The runner survives a model error and keeps serving.
      const again = await worker.call(
        {
          type: 'infer',
          slot: 0,
          inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: f32(x) }],
          outputs: null,
        },
        10_000,
      )
      assert.equal(again.type, 'result')
    } finally {
      await worker.stop()
    }
    assert.ok(isGone(worker.pid))
  })

  it('holds one model per slot: each answers its own outputs, unloading one frees it alone', async () => {
    const second = join(dir.path, 'second.onnx')
    await writeFile(second, mlpModel(4, 8, 3, 99))
    const worker = await WorkerProcess.start({ ...OPTIONS, entry: RUNNER, args: ['onnx'] })
    const x = [0.5, -1, 2, 0.25]
    const run = async (slot: number) => {
      const input = { name: 'x', datatype: 'FP32', shape: [1, 4], data: f32(x) } as const
      const answer = await worker.call(
        { type: 'infer', slot, inputs: [input], outputs: null },
        10_000,
      )
      assert.equal(answer.type, 'result')
      const y = answer.type === 'result' ? answer.outputs[0] : undefined
      return Array.from(new Float32Array(Uint8Array.from(y?.data ?? []).buffer))
    }
    const near = (got: number[], want: number[]) =>
      want.every((w, i) => Math.abs((got[i] ?? Number.NaN) - w) < 1e-5)
    try {
      await worker.call({ type: 'load', slot: 3, modelPath, intraOpThreads: 1 }, 10_000)
      await worker.call({ type: 'load', slot: 8, modelPath: second, intraOpThreads: 1 }, 10_000)
      assert.ok(near(await run(3), referenceMlp(x, 1, 4, 8, 3, 7)))
      assert.ok(near(await run(8), referenceMlp(x, 1, 4, 8, 3, 99)))
      assert.equal((await worker.call({ type: 'unload', slot: 3 }, 10_000)).type, 'unloaded')
      await assert.rejects(run(3), (err) => isBerthError(err, 'model_load_failed'))
      assert.ok(near(await run(8), referenceMlp(x, 1, 4, 8, 3, 99)))
    } finally {
      await worker.stop()
    }
  })

  it('reports a model ONNX Runtime cannot load as model_load_failed', async () => {
    const bad = join(dir.path, 'garbage.onnx')
    await writeFile(bad, Buffer.from('definitely not a model'))
    const worker = await WorkerProcess.start({ ...OPTIONS, entry: RUNNER, args: ['onnx'] })
    try {
      await assert.rejects(
        worker.call({ type: 'load', slot: 0, modelPath: bad, intraOpThreads: 1 }, 10_000),
        (err) => isBerthError(err, 'model_load_failed'),
      )
    } finally {
      await worker.stop()
    }
  })
})
