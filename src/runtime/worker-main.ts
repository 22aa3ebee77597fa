import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { BerthError, isBerthError } from '../errors/berth-error.js'
import { withServerPathsHidden } from '../errors/hide-server-paths.js'
import { EncoderModelRuntime } from './encoder/encoder-model-runtime.js'
import { type FetchedModel, fetchModel, rebase } from './model-fetch.js'
import type { LoadedModel, ModelRuntime } from './model-runtime.js'
import { OnnxModelRuntime } from './onnx/onnx-model-runtime.js'
import { acceptBerth, formatRunnerAddress, parseRunnerAddress } from './runner-listener.js'
import { withTask } from './task-pipeline.js'
import { WeightsModelRuntime } from './weights/weights-model-runtime.js'
import {
  FrameDecoder,
  type FromWorker,
  isRunnerErrorCode,
  isToWorker,
  RUNNER_PROTOCOL_VERSION,
  type ToWorker,
  type WireError,
  writeFrame,
} from './worker-protocol.js'

// The entry point of a runner process. It speaks the runner protocol on fd 3, or, given
// BERTH_RUNNER_LISTEN (`tcp:HOST:PORT` or `unix:/path`) and BERTH_RUNNER_TOKEN, on the first
// connection there that says `hello` with that token (a runner in a container or on another
// machine). It holds one model per slot berth names (several models of one organization may share
// the process), runs one request at a time (a ping is answered at once, ahead of them), and exits
// when berth closes the channel (or dies). A load that carries an archive to fetch (the runner
// cannot see berth's files) is fetched into BERTH_RUNNER_SCRATCH (the temp dir when unset) and
// removed when the model is unloaded.

const MAX_FRAME_BYTES = 2 ** 32 - 1

const RUNTIMES: Readonly<Record<string, () => ModelRuntime>> = {
  onnx: () => new OnnxModelRuntime(),
  weights: () => new WeightsModelRuntime(),
  encoder: () => new EncoderModelRuntime(),
}

const runtimeName = process.argv[2] ?? 'onnx'
const makeRuntime = RUNTIMES[runtimeName]
if (makeRuntime === undefined) {
  process.stderr.write(`unknown runtime ${runtimeName}\n`)
  process.exit(2)
}
const runtime = makeRuntime()
// Given BERTH_RUNNER_TRACES_URL (berth passes it when it traces), each inference is a span of the
// trace berth's call carried in its `traceparent`, sent from here as OTLP.
const tracesUrl = process.env.BERTH_RUNNER_TRACES_URL
const tracing = tracesUrl
  ? (await import('./runner-tracing.js')).runnerTracing(tracesUrl)
  : undefined
const channel = await openChannel()
const decoder = new FrameDecoder(isToWorker, MAX_FRAME_BYTES)
const models = new Map<number, LoadedModel>()
/** The files fetched for each slot's model, removed with it. */
const fetched = new Map<number, FetchedModel>()
const scratch = process.env.BERTH_RUNNER_SCRATCH || tmpdir()
let queue: Promise<void> = Promise.resolve()

/** fd 3 of a runner berth spawned, or berth's connection to the address it listens on. */
async function openChannel(): Promise<Socket> {
  const listen = process.env.BERTH_RUNNER_LISTEN
  if (listen === undefined) return new Socket({ fd: 3, readable: true, writable: true })
  const address = parseRunnerAddress(listen)
  const token = process.env.BERTH_RUNNER_TOKEN ?? ''
  if (address === undefined || token === '') {
    process.stderr.write(
      'runner: BERTH_RUNNER_LISTEN must be tcp:HOST:PORT or unix:/path, with BERTH_RUNNER_TOKEN\n',
    )
    return process.exit(2)
  }
  const wait = Number(process.env.BERTH_RUNNER_WAIT_MS)
  const waitMs = Number.isSafeInteger(wait) && wait > 0 ? wait : undefined
  return acceptBerth(
    address,
    token,
    (bound) => {
      // Said on stdout, where berth reads a runner's lines: the port a `:0` address was given.
      process.stdout.write(`runner: listening on ${formatRunnerAddress(bound)}\n`)
    },
    waitMs,
  ).catch((err: unknown) => {
    process.stderr.write(`runner: ${err instanceof Error ? err.message : String(err)}\n`)
    return process.exit(3)
  })
}

function send(message: FromWorker): void {
  writeFrame(channel, message)
}

async function handle(message: Exclude<ToWorker, { type: 'ping' | 'hello' }>): Promise<FromWorker> {
  switch (message.type) {
    case 'load': {
      await unload(message.slot)
      const { archive } = message
      // Named relative to the model's folder, or the scratch volume: never the runner's paths.
      const copy =
        archive === undefined
          ? undefined
          : await fetchModel(archive, scratch).catch((err: unknown) => {
              throw withServerPathsHidden(err, scratch)
            })
      try {
        const local = (path: string) =>
          archive === undefined || copy === undefined ? path : rebase(path, archive.root, copy.root)
        const loaded = await runtime.load(local(message.modelPath), {
          intraOpThreads: message.intraOpThreads,
          ...(message.weights === undefined ? {} : { weights: message.weights }),
        })
        const { task } = message
        const model =
          task === undefined ? loaded : await withTask(loaded, { ...task, dir: local(task.dir) })
        models.set(message.slot, model)
        if (copy !== undefined) fetched.set(message.slot, copy)
        return { type: 'loaded', id: message.id, inputs: model.inputs, outputs: model.outputs }
      } catch (err) {
        if (copy === undefined) throw err
        await copy.remove()
        // Named relative to the model's folder, as berth names the files it serves itself.
        throw withServerPathsHidden(err, copy.root)
      }
    }
    case 'infer': {
      const model = models.get(message.slot)
      if (model === undefined) {
        throw new BerthError('model_load_failed', `no model is loaded in slot ${message.slot}`)
      }
      const run = () => model.infer(message.inputs, message.outputs)
      const { traceparent, requestIds = [] } = message
      return {
        type: 'result',
        id: message.id,
        outputs:
          tracing === undefined || traceparent === undefined
            ? await run()
            : await tracing.inSpan(traceparent, `model.run ${runtimeName}`, run, {
                'berth.request_ids': [...requestIds],
              }),
      }
    }
    case 'unload':
      await unload(message.slot)
      return { type: 'unloaded', id: message.id }
  }
}

/** Frees the model in `slot`, if any: its neighbours are untouched. */
async function unload(slot: number): Promise<void> {
  const model = models.get(slot)
  models.delete(slot)
  await model?.unload()
  const copy = fetched.get(slot)
  fetched.delete(slot)
  await copy?.remove()
}

channel.on('data', (chunk: Buffer) => {
  let messages: ToWorker[]
  try {
    messages = decoder.push(chunk)
  } catch (err) {
    process.stderr.write(`runner: ${String(err)}\n`)
    process.exit(3)
  }
  for (const message of messages) {
    // Answered here, not queued: berth pings only while nothing is outstanding, and a pong that
    // waited behind a request would only say the request was slow.
    if (message.type === 'ping') {
      send({ type: 'pong', id: message.id })
      continue
    }
    // The connection is berth's already: a hello now says nothing.
    if (message.type === 'hello') continue
    queue = queue.then(async () => {
      try {
        send(await handle(message))
      } catch (err) {
        send({ type: 'failed', id: message.id, error: wireError(err) })
      }
    })
  }
})

/** A failure as the protocol carries it: berth refuses codes a runner may not send. */
function wireError(err: unknown): WireError {
  if (!isBerthError(err)) return { code: 'internal_error', message: String(err) }
  if (isRunnerErrorCode(err.code)) return { code: err.code, message: err.message }
  return { code: 'internal_error', message: `${err.code}: ${err.message}` }
}
// berth went away: nothing is left to serve (the spans not yet sent go first, briefly).
const leave = () => {
  if (tracing === undefined) process.exit(0)
  setTimeout(() => process.exit(0), 2000).unref()
  void tracing.stop().finally(() => process.exit(0))
}
channel.on('close', leave)
channel.on('error', leave)

send({ type: 'started', protocol: RUNNER_PROTOCOL_VERSION, pid: process.pid })
