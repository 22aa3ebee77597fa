import { BerthApiError, BerthConnectionError } from '@berth/client'
import { type Command, CommanderError } from 'commander'
import { type App, createApp } from './app.js'
import type { Rendered } from './cli/output.js'
import { buildProgram } from './cli/program.js'
import { usage } from './cli/server-client.js'
import type { Config } from './config/config.js'
import { loadConfig } from './config/load-config.js'
import { isBerthError } from './errors/berth-error.js'
import { BERTH_VERSION } from './version.js'

// The entry point of the `berth` command: the only reader of process.env, the only place that
// listens, handles signals and chooses exit codes (0 done, 1 refused or unreachable, 2 usage).

const EXIT_FAILURE = 1
const EXIT_USAGE = 2
/** A message's line breaks and their indentation: every error is said in one line. */
const NEWLINES = /\s*\n\s*/g

async function main(argv: readonly string[]): Promise<void> {
  // Errors are JSON with --json (wherever it is given, even where parsing stops first).
  const json = argv.includes('--json')
  let result: Rendered | undefined
  const program = buildProgram(
    {
      stdin: process.stdin,
      progress: process.stderr,
      out: (text) => process.stdout.write(text),
      // With --json, stderr holds the one JSON error line: no help text before it.
      helpOnError: json ? () => undefined : (text) => process.stderr.write(text),
    },
    {
      version: BERTH_VERSION,
      config: () => loadConfig(process.env),
      serve,
      answered: (answer) => {
        result = answer
      },
    },
  )
  if (argv.length === 0) {
    program.outputHelp()
    process.exitCode = EXIT_USAGE
    return
  }
  try {
    await program.parseAsync([...argv], { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, having printed what was asked.
      if (err.exitCode === 0) return
      process.exitCode = EXIT_USAGE
      // A group without its command (`berth org`): its help went to stderr already.
      if (err.code === 'commander.help') {
        const group = commandOf(program, argv)
        if (json)
          reportError(usage(`berth ${group}needs a command; see berth ${group}--help`), json)
        return
      }
      const said = err.message.replace(/^error: /, '').replace(NEWLINES, ' ')
      const help = commandOf(program, argv)
      const message = `${said}; see berth ${help}--help`
      reportError(usage(message), json)
      return
    }
    if (isBerthError(err, 'config_invalid') && !json) {
      reportStartFailure(err)
      process.exitCode = EXIT_FAILURE
      return
    }
    // A file the command was given and cannot read: the command's, said in one line.
    const failure = isSystemError(err) ? usage(err.message) : err
    reportError(failure, json)
    process.exitCode = isBerthError(failure, 'cli_usage_invalid') ? EXIT_USAGE : EXIT_FAILURE
    return
  }
  if (result !== undefined) {
    process.stdout.write(json ? `${JSON.stringify(result.json)}\n` : result.human)
    // Printed, and yet a failure: a --wait that ended failed, or did not settle.
    if (result.failed === true) process.exitCode = EXIT_FAILURE
  }
}

/** An error of the operating system's (ENOENT, EACCES…) about a path the command was given. */
function isSystemError(err: unknown): err is NodeJS.ErrnoException & Error {
  const { code, syscall } = (err ?? {}) as { code?: unknown; syscall?: unknown }
  return err instanceof Error && typeof code === 'string' && typeof syscall === 'string'
}

async function serve(config: Config): Promise<void> {
  let app: App
  try {
    app = await createApp(config)
  } catch (err) {
    reportStartFailure(err)
    process.exitCode = EXIT_FAILURE
    return
  }
  if (app.bootstrap.created && app.bootstrap.generatedKey !== undefined) {
    // Printed once, on purpose outside the logger: logs must never carry keys.
    process.stdout.write(
      `berth: created organization "default" (enterprise) with API key ${app.bootstrap.generatedKey}\n` +
        `berth: the key is also in ${app.bootstrap.generatedKeyFile} (mode 0600); it is not shown again\n`,
    )
  }

  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      app.logger.warn({ signal }, 'second signal: exiting now')
      process.exit(EXIT_FAILURE)
    }
    stopping = true
    app.logger.info({ signal }, 'shutting down')
    app.close().then(
      () => app.logger.info('stopped'),
      (err: unknown) => {
        app.logger.error({ err }, 'shutdown failed')
        process.exitCode = EXIT_FAILURE
      },
    )
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)

  try {
    await app.server.listen({ host: config.http.host, port: config.http.port })
    const { listen } = config.metrics
    if (app.metricsServer !== undefined && listen !== undefined) {
      await app.metricsServer.listen({ host: listen.host, port: listen.port })
    }
  } catch (err) {
    app.logger.error({ err }, 'cannot listen')
    process.exitCode = EXIT_FAILURE
    await app.close()
  }
}

/**
 * A command's failure, in one line on stderr with its code: `berth: CODE: message` for people,
 * or with `--json` the server's error envelope unchanged (one in its shape for berth's own).
 * Only a fault of berth's own shows its stack.
 */
function reportError(err: unknown, json: boolean): void {
  let error: { code: string; message: string; details?: unknown } | undefined
  if (err instanceof BerthApiError) {
    if (json && err.body !== undefined) {
      process.stderr.write(`${JSON.stringify(err.body)}\n`)
      return
    }
    error = { code: err.code, message: `${err.message} (HTTP ${err.status})`, details: err.details }
  } else if (err instanceof BerthConnectionError) {
    error = { code: 'cli_server_unreachable', message: err.message, details: { url: err.url } }
  } else if (isBerthError(err)) {
    error = { code: err.code, message: err.message, details: err.details }
  }
  if (error === undefined) {
    process.stderr.write(`berth: ${stackOf(err)}\n`)
  } else if (json) {
    process.stderr.write(`${JSON.stringify({ error })}\n`)
  } else {
    process.stderr.write(`berth: ${error.code}: ${error.message.replace(NEWLINES, ' ')}\n`)
  }
}

/**
 * A configuration that does not load, or a server that cannot start (its database unreachable,
 * its directory locked): for the operator, one line per problem, `berth: CODE: what`, the code
 * being the one docs/errors.md explains. Only a fault of berth's own shows its stack.
 */
function reportStartFailure(err: unknown): void {
  if (!isBerthError(err)) {
    process.stderr.write(`berth: ${stackOf(err)}\n`)
    return
  }
  const problems = err.details?.problems
  const lines =
    err.code === 'config_invalid' && Array.isArray(problems) ? problems.map(String) : [err.message]
  for (const line of lines) {
    process.stderr.write(`berth: ${err.code}: ${line.replace(NEWLINES, ' ')}\n`)
  }
}

/** The command `argv` names (its leading words that are commands), for a help hint. */
function commandOf(program: Command, argv: readonly string[]): string {
  const words: string[] = []
  let command = program
  for (const word of argv) {
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word))
    if (sub === undefined) break
    words.push(`${sub.name()} `)
    command = sub
  }
  return words.join('')
}

function stackOf(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err)
}

await main(process.argv.slice(2))
