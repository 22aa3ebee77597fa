import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

/** The `berth` command of this checkout (runs the built `dist/`). */
export const BERTH_BIN = fileURLToPath(new URL('../../../bin/berth', import.meta.url))

export interface CommandResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs `berth ARGS` to completion with exactly `env` (plus PATH). */
export function runBerth(
  args: readonly string[],
  env: Record<string, string>,
  options: { timeoutMs?: number; bin?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      options.bin ?? BERTH_BIN,
      [...args],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: options.timeoutMs ?? 30_000 },
      (err, stdout, stderr) => {
        // A run killed by the timeout reports 124 (as timeout(1) does), never a plausible code.
        const code =
          err === null ? 0 : err.killed ? 124 : typeof err.code === 'number' ? err.code : 1
        resolve({ code, stdout, stderr })
      },
    )
  })
}

export interface ServeProcess {
  readonly child: ChildProcess
  readonly url: string
  output(): string
  /** Sends `signal` and resolves the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/**
 * Starts `berth serve` on an ephemeral port and waits until it listens (read from its info-level
 * log, so the log level is fixed). The child is killed if it does not come up. `bin`: another
 * `berth` command than this checkout's (a bench comparing two builds).
 */
export async function startBerthServe(
  env: Record<string, string>,
  bin: string = BERTH_BIN,
): Promise<ServeProcess> {
  const child = spawn(bin, ['serve'], {
    env: { PATH: process.env.PATH ?? '', BERTH_PORT: '0', ...env, BERTH_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk) => {
    output += String(chunk)
  })
  child.stderr.on('data', (chunk) => {
    output += String(chunk)
  })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`berth serve did not listen:\n${output}`))
    }, 20_000)
    const check = () => {
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match?.[1] !== undefined) {
        clearTimeout(timer)
        // Looked for no more: scanning the whole log again on each line grew with it, and cost
        // a load generator in the same process more CPU per request the longer a bench ran.
        child.stdout.off('data', check)
        resolve(match[1])
      }
    }
    child.stdout.on('data', check)
    child.once('exit', () => reject(new Error(`berth serve exited:\n${output}`)))
  })
  return {
    child,
    url,
    output: () => output,
    stop: async (signal = 'SIGTERM') => {
      // Ended already (on its own, or killed by a signal: then the code is null).
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      const exited = once(child, 'exit')
      child.kill(signal)
      const [code] = await exited
      return code as number | null
    },
  }
}
