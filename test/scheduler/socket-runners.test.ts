import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { isBerthError } from '../../src/errors/berth-error.js'
import { parseRunnerAddress, type RunnerAddress } from '../../src/runtime/runner-listener.js'
import { writeFrame } from '../../src/runtime/worker-protocol.js'
import { TORCH_WORKER } from '../../src/scheduler/local/torch-python.js'
import { type RunnerHost, WorkerProcess } from '../../src/scheduler/local/worker-process.js'
import { connectRunner } from '../../src/scheduler/runner-connection.js'
import { mlpModel } from '../fixtures/onnx-models.js'
import { SYSTEM_PYTHON, torchSkipReason } from '../fixtures/torch-fixtures.js'
import { eventually } from '../helpers/processes.js'
import { assertServesMlp } from '../helpers/runners.js'
import { tempDir } from '../helpers/temp-dir.js'

const RUNNER = fileURLToPath(new URL('../../src/runtime/worker-main.js', import.meta.url))
const TOKEN = 'a'.repeat(64)
const OPTIONS = { startTimeoutMs: 5000, killGraceMs: 500, maxFrameBytes: 1 << 30 }

/** A runner listening for berth, as a container runs one, started here as a plain process. */
function listeningRunner(
  listen: string,
  token = TOKEN,
  program = [process.execPath, RUNNER, 'onnx'],
  env: Record<string, string> = {},
) {
  const [executable, ...args] = program as [string, ...string[]]
  const child = spawn(executable, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { BERTH_RUNNER_LISTEN: listen, BERTH_RUNNER_TOKEN: token, ...env },
  })
  const lines: string[] = []
  child.stdout?.setEncoding('utf8').on('data', (text: string) => lines.push(text))
  child.stderr?.setEncoding('utf8').on('data', (text: string) => lines.push(text))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const host: RunnerHost = {
    pid: child.pid,
    get running() {
      return child.exitCode === null && child.signalCode === null
    },
    exited,
    terminate: () => child.kill('SIGTERM'),
    kill: () => child.kill('SIGKILL'),
  }
  return { child, host, lines, exited }
}

/** The address a runner said it listens on (the port of a `:0` address). */
async function boundAddress(lines: string[]): Promise<RunnerAddress> {
  let found: RunnerAddress | undefined
  await eventually(() => {
    const line = lines.join('').match(/listening on (\S+)/)
    found = line?.[1] === undefined ? undefined : parseRunnerAddress(line[1])
    return found !== undefined
  })
  return found as RunnerAddress
}

/** Whether the runner closes a connection that sends `frame` (or raw bytes). */
function closedAfter(address: RunnerAddress, send: (socket: ReturnType<typeof connect>) => void) {
  return new Promise<boolean>((resolve) => {
    const socket =
      address.kind === 'unix' ? connect(address.path) : connect(address.port, address.host)
    let answered = false
    // Not closed within the runner's hello window: it took the stranger in.
    const timer = setTimeout(() => {
      socket.destroy()
      resolve(false)
    }, 6000)
    socket.on('connect', () => send(socket))
    socket.on('data', () => {
      answered = true
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(!answered)
    })
    socket.on('error', () => undefined)
  })
}

describe('runners over a socket (containers, other machines)', async () => {
  const torchSkip = await torchSkipReason()
  let dir: Awaited<ReturnType<typeof tempDir>>
  let modelPath: string
  const started: ChildProcess[] = []
  before(async () => {
    dir = await tempDir()
    modelPath = join(dir.path, 'model.onnx')
    await writeFile(modelPath, mlpModel(4, 8, 3, 7))
  })
  after(async () => {
    for (const child of started) child.kill('SIGKILL')
    await dir.remove()
  })

  const serve = (worker: WorkerProcess) => assertServesMlp(worker, modelPath, 5000)

  for (const [label, listen] of [
    ['a Unix socket', () => `unix:${join(dir.path, 'runner.sock')}`],
    ['TCP on 127.0.0.1, a port of its choosing', () => 'tcp:127.0.0.1:0'],
  ] as const) {
    it(`serves berth over ${label} once berth says hello with the token`, async () => {
      const runner = listeningRunner(listen())
      started.push(runner.child)
      const address = await boundAddress(runner.lines)

      // Strangers are turned away and the runner listens on: garbage, a wrong token, a request.
      const wrong = (socket: ReturnType<typeof connect>) =>
        writeFrame(socket, { type: 'hello', id: 0, token: 'b'.repeat(64) })
      assert.equal(await closedAfter(address, wrong), true, 'a wrong token')
      assert.equal(
        await closedAfter(address, (s) => s.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'))),
        true,
        'not a frame',
      )
      const ping = (socket: ReturnType<typeof connect>) =>
        writeFrame(socket, { type: 'ping', id: 1 })
      assert.equal(await closedAfter(address, ping), true, 'a request before hello')

      const channel = await connectRunner(address, TOKEN, 5000)
      const worker = await WorkerProcess.attach(runner.host, channel, OPTIONS)
      assert.equal(worker.pid, runner.child.pid)
      await serve(worker)

      // It listens no more once berth is in: a second connection is refused.
      if (address.kind === 'tcp') {
        await assert.rejects(connectRunner(address, TOKEN, 200), (err) =>
          isBerthError(err, 'runner_start_timeout'),
        )
      }
      // berth closing the channel ends the runner.
      await worker.stop()
      const exit = await runner.exited
      assert.ok(exit.code === 0 || exit.signal === 'SIGTERM', JSON.stringify(exit))
    })
  }

  it('serves berth from the torch runner too, over TCP with its token', {
    skip: torchSkip,
  }, async () => {
    const runner = listeningRunner('tcp:127.0.0.1:0', TOKEN, [SYSTEM_PYTHON, TORCH_WORKER])
    started.push(runner.child)
    const address = await boundAddress(runner.lines)
    const wrong = (socket: ReturnType<typeof connect>) =>
      writeFrame(socket, { type: 'hello', id: 0, token: 'b'.repeat(64) })
    assert.equal(await closedAfter(address, wrong), true, 'a wrong token')
    const channel = await connectRunner(address, TOKEN, 10_000)
    // Its started carried this server's protocol version: attach checks it.
    const worker = await WorkerProcess.attach(runner.host, channel, OPTIONS)
    const answer = await worker.call({ type: 'unload', slot: 0 }, 5000)
    assert.equal(answer.type, 'unloaded')
    await worker.stop()
    await runner.exited
  })

  it('fails the runner when the connection drops, and refuses to listen without a token', async () => {
    const runner = listeningRunner('tcp:127.0.0.1:0')
    started.push(runner.child)
    const channel = await connectRunner(await boundAddress(runner.lines), TOKEN, 5000)
    const worker = await WorkerProcess.attach(runner.host, channel, OPTIONS)
    channel.destroy()
    await eventually(() => worker.failure !== undefined)
    assert.equal(worker.failure?.code, 'runner_crashed')
    await runner.exited

    const tokenless = listeningRunner('tcp:127.0.0.1:0', '')
    started.push(tokenless.child)
    assert.equal((await tokenless.exited).code, 2)
    assert.match(tokenless.lines.join(''), /BERTH_RUNNER_TOKEN/)
  })

  it('ends a runner berth never connects to within BERTH_RUNNER_WAIT_MS, Node and torch', async () => {
    const programs = [[process.execPath, RUNNER, 'onnx']]
    if ((await torchSkipReason()) === undefined) programs.push([SYSTEM_PYTHON, TORCH_WORKER])
    for (const program of programs) {
      const alone = listeningRunner('tcp:127.0.0.1:0', TOKEN, program, {
        BERTH_RUNNER_WAIT_MS: '300',
      })
      started.push(alone.child)
      await boundAddress(alone.lines)
      assert.equal((await alone.exited).code, 3, alone.lines.join(''))
      assert.match(alone.lines.join(''), /did not connect within 300 ms/)
    }
  })
})
