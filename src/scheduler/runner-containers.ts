import { createHash, randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import type { RunnerRuntime } from '../domain/serving-plan.js'
import { BerthError } from '../errors/berth-error.js'
import type { RunnerProtocolOptions } from './local/runner-launcher.js'
import { type RunnerHost, WorkerProcess } from './local/worker-process.js'
import { connectRunner } from './runner-connection.js'

/**
 * What the `docker` and `swarm` launchers share: who a runner container is (its name, token,
 * user, environment and labels), the command in berth's runtime images, and how berth reaches
 * it once it runs.
 */

/** The port a containerized runner listens on, inside its container. */
export const RUNNER_PORT = 7070

/** The label that ties a container or service to the berth server (its data dir) that made it. */
export const OWNER_LABEL = 'berth.owner'

/** Most processes and threads one runner container may run (ONNX Runtime's pools included). */
export const RUNNER_PIDS_LIMIT = 4096

/** What every container launcher is told. */
export interface ContainerRunnerOptions extends RunnerProtocolOptions {
  /** Which server's runners these are: a stable id of its data dir, on every label. */
  readonly owner: string
  /** The runtime image of each runtime (berth-runtime-onnx, berth-runtime-torch). */
  readonly image: (runtime: RunnerRuntime) => string
  /** The runner's command in that image; berth's own runners unless said (tests). */
  readonly command?: (runtime: RunnerRuntime) => readonly string[]
  /** Host folders the runner reads, mounted read-only at the same path: the installed models. */
  readonly readOnlyPaths: readonly string[]
  /**
   * Where in the container a volume of its own is mounted for the models the runner fetches
   * (`BERTH_RUNNER_FILES=fetch`: the image makes the folder writable to any user); unset: none.
   */
  readonly scratch?: string
}

/** One runner container's identity: a fresh name and token, the server's user, its labels. */
interface RunnerIdentity {
  readonly name: string
  readonly image: string
  readonly command: readonly string[]
  /** The token berth says in its `hello`: 32 random bytes, the runner's alone. */
  readonly token: string
  /** The server's own `uid:gid`: the model files it wrote (0600, 0700) are its alone. */
  readonly user: string
  readonly env: Readonly<Record<string, string>>
  readonly labels: Readonly<Record<string, string>>
}

export function runnerIdentity(
  options: ContainerRunnerOptions,
  runtime: RunnerRuntime,
): RunnerIdentity {
  const token = randomBytes(32).toString('hex')
  return {
    name: `berth-runner-${randomBytes(8).toString('hex')}`,
    image: options.image(runtime),
    command: (options.command ?? runnerCommand)(runtime),
    token,
    user: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`,
    env: {
      ...options.runnerEnv,
      BERTH_RUNNER_LISTEN: `tcp:0.0.0.0:${RUNNER_PORT}`,
      BERTH_RUNNER_TOKEN: token,
      // berth connects within its start bound, counted from before the runner starts: a runner
      // still alone after as long is one berth gave up (and could not remove).
      BERTH_RUNNER_WAIT_MS: String(options.startTimeoutMs),
      ...(options.scratch === undefined ? {} : { BERTH_RUNNER_SCRATCH: options.scratch }),
    },
    labels: { [OWNER_LABEL]: options.owner, 'berth.runtime': runtime },
  }
}

/** berth's runners as the runtime images hold them (their working directory is the package). */
function runnerCommand(runtime: RunnerRuntime): readonly string[] {
  if (runtime === 'torch') return ['python3', 'python/torch_worker.py']
  return ['node', 'dist/runtime/worker-main.js', runtime]
}

/**
 * Connects to a runner container at `address`, says its token, and runs the protocol client over
 * the connection; one deadline bounds both (the runner's start is bounded once, wherever it runs).
 */
export async function attachRunner(
  host: RunnerHost,
  address: { readonly host: string; readonly port: number },
  token: string,
  deadline: number,
  options: RunnerProtocolOptions,
  log: (line: string) => void,
): Promise<WorkerProcess> {
  const left = () => Math.max(1, deadline - performance.now())
  const channel = await connectRunner({ kind: 'tcp', ...address }, token, left())
  return WorkerProcess.attach(host, channel, {
    startTimeoutMs: left(),
    killGraceMs: options.killGraceMs,
    maxFrameBytes: options.maxFrameBytes,
    ...(options.ping === undefined ? {} : { ping: options.ping }),
    log,
  })
}

/** `runtime_unavailable`: the engine lacks the runtime image a runner needs, and how to make it. */
export function imageMissing(runtime: RunnerRuntime, image: string): BerthError {
  const dockerfile = runtime === 'torch' ? 'runtime-torch' : 'runtime-onnx'
  return new BerthError(
    'runtime_unavailable',
    `the container engine has no image ${image} for the ${runtime} runtime: build it from berth's source with docker build -f docker/${dockerfile}.Dockerfile -t ${image} . (or load it; with swarm, on every node), or name another in BERTH_RUNTIME_IMAGE_${runtime === 'torch' ? 'TORCH' : 'ONNX'}`,
  )
}

/** The owner label of one data dir's runners, whatever else the engine runs: what a restart removes. */
export function ownerOf(dataDir: string): string {
  return createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 16)
}
