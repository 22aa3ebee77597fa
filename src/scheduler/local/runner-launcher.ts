import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { RunnerRuntime } from '../../domain/serving-plan.js'
import { TORCH_WORKER, TorchPython } from './torch-python.js'
import { type RunnerPing, WorkerProcess } from './worker-process.js'

export const RUNNER_ENTRY = fileURLToPath(new URL('../../runtime/worker-main.js', import.meta.url))

/** The command that starts a runner for a runtime: berth's own, or (in tests) a fixture. */
export interface RunnerCommand {
  /** The program; Node itself when unset. */
  readonly executable?: string
  readonly entry: string
  readonly args: readonly string[]
}

/** What a runner may use: the deployment's `num_cpus`, `memory_gb` and `num_gpus`. */
export interface RunnerLimits {
  readonly cpus: number
  readonly memoryBytes: number
  /** GPUs handed to it whole (a container's device request); the local launcher has none to hand. */
  readonly gpus: number
  /** Node labels its node must carry (the `swarm` launcher's placement); unset: any node. */
  readonly nodeSelector?: Readonly<Record<string, string>>
}

/** What every launcher's runners share: the protocol client's settings. */
export interface RunnerProtocolOptions {
  readonly startTimeoutMs: number
  readonly killGraceMs: number
  readonly maxFrameBytes: number
  /** Liveness checks of idle runners; unset: none. */
  readonly ping?: RunnerPing | undefined
  /** The runners' environment (never the server's own); unset: an empty one. */
  readonly runnerEnv?: Readonly<Record<string, string>>
}

/** A runner started, and what it leaves to clean once it has ended. */
export interface Launched {
  readonly worker: WorkerProcess
  /** Resolves once what the runner left (a pid file, a container) is gone after it ended. */
  readonly cleaned: Promise<void>
}

/**
 * Where a scheduler's runners run: child processes of this server, or containers. The scheduler
 * admits, places and tracks them; the launcher starts one and cleans after it.
 */
export interface RunnerLauncher {
  /**
   * Starts a runner for `runtime` and resolves it after its handshake. `limits`: the
   * deployment's (unset for a runner with no deployment yet: a spare, an upload's load check).
   * `log` receives its output lines.
   */
  launch(
    runtime: RunnerRuntime,
    limits: RunnerLimits | undefined,
    log: (line: string) => void,
  ): Promise<Launched>
  /** Ends the runners a crashed earlier server left behind; resolves how many. */
  endLeftovers(): Promise<number>
}

export interface ProcessLauncherOptions extends RunnerProtocolOptions {
  /** Where the pid of every live runner is recorded, to end leftovers after a crash. */
  readonly runDir: string
  /** A python3 with torch for the torch runtime (BERTH_TORCH_PYTHON); auto-detected when unset. */
  readonly torchPython?: string | undefined
  /** Defaults to berth's runners: `runtime/worker-main.js RUNTIME`, or python for `torch`. */
  readonly command?: (runtime: RunnerRuntime) => RunnerCommand
}

/**
 * Runners as child processes of this server, talking on fd 3. Each one's pid is recorded under
 * `runDir` while it lives, so that a server started after a crash ends what it left.
 */
export class ProcessLauncher implements RunnerLauncher {
  readonly #options: ProcessLauncherOptions
  readonly #torch: TorchPython

  constructor(options: ProcessLauncherOptions) {
    this.#options = options
    this.#torch = new TorchPython(options.torchPython)
  }

  async launch(
    runtime: RunnerRuntime,
    _limits: RunnerLimits | undefined,
    log: (line: string) => void,
  ): Promise<Launched> {
    const options = this.#options
    const command = options.command?.(runtime) ?? (await this.#commandFor(runtime))
    const worker = await WorkerProcess.start({
      ...(command.executable === undefined ? {} : { executable: command.executable }),
      entry: command.entry,
      args: command.args,
      startTimeoutMs: options.startTimeoutMs,
      killGraceMs: options.killGraceMs,
      maxFrameBytes: options.maxFrameBytes,
      ...(options.runnerEnv === undefined ? {} : { env: options.runnerEnv }),
      ...(options.ping === undefined ? {} : { ping: options.ping }),
      log,
    })
    const pidFile = join(options.runDir, String(worker.pid))
    await mkdir(options.runDir, { recursive: true })
    await writeFile(pidFile, `${command.entry}\n`)
    const cleaned = worker.exited.then(() => rm(pidFile, { force: true }))
    return { worker, cleaned }
  }

  /** berth's own runners: Node for ONNX, weights and encoders; python for TorchScript. */
  async #commandFor(runtime: RunnerRuntime): Promise<RunnerCommand> {
    if (runtime === 'torch') {
      return { executable: await this.#torch.resolve(), entry: TORCH_WORKER, args: [] }
    }
    return { entry: RUNNER_ENTRY, args: [runtime] }
  }

  /** Ends processes whose pid files name one of our runners; removes every pid file. */
  async endLeftovers(): Promise<number> {
    let names: string[]
    try {
      names = await readdir(this.#options.runDir)
    } catch {
      return 0
    }
    let ended = 0
    for (const name of names) {
      const file = join(this.#options.runDir, name)
      const pid = Number(name)
      const entry = (await readFile(file, 'utf8').catch(() => '')).trim()
      // The pid may have been reused by an unrelated process: only end it if it runs our entry.
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
      if (Number.isSafeInteger(pid) && entry !== '' && cmdline.split('\0').includes(entry)) {
        try {
          process.kill(pid, 'SIGKILL')
          ended += 1
        } catch {
          // Already gone.
        }
      }
      await rm(file, { force: true })
    }
    return ended
  }
}
