import { BerthApiError, BerthConnectionError } from '@berth/client'
import { type App, createApp } from './app.js'
import { ADMIN_USAGE, runAdminCommand } from './cli/admin-commands.js'
import { CLIENT_USAGE, isClientCommand, runClientCommand } from './cli/client-commands.js'
import { runUploadCommand, UPLOAD_USAGE } from './cli/upload-command.js'
import type { Config } from './config/config.js'
import { loadConfig } from './config/load-config.js'
import { isBerthError } from './errors/berth-error.js'

// The entry point of the `berth` command: the only reader of process.env, the only place that
// listens, handles signals and chooses exit codes.

const EXIT_FAILURE = 1
const EXIT_USAGE = 2

async function main(argv: readonly string[]): Promise<void> {
  const [command] = argv
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${ADMIN_USAGE}\n${UPLOAD_USAGE}\n${CLIENT_USAGE}\n`)
    process.exitCode = command === undefined ? EXIT_USAGE : 0
    return
  }
  if (command === 'serve' && argv.length > 1) {
    // `serve` takes no arguments: a help flag (or a typo) must never start a second server.
    const help = ['--help', '-h', 'help'].includes(argv[1] ?? '')
    const text = `${SERVE_USAGE}\n`
    if (help) process.stdout.write(text)
    else process.stderr.write(`berth: serve takes no arguments\n${text}`)
    process.exitCode = help ? 0 : EXIT_USAGE
    return
  }
  const config = readConfig()
  if (config === undefined) return
  if (command === 'serve') return serve(config)

  try {
    const output =
      command === 'upload'
        ? await runUploadCommand(argv.slice(1), config, { progress: process.stderr })
        : isClientCommand(command)
          ? await runClientCommand(argv, config, { stdin: process.stdin, progress: process.stderr })
          : await runAdminCommand(argv, config)
    process.stdout.write(typeof output === 'string' ? output : `${JSON.stringify(output)}\n`)
  } catch (err) {
    reportError(err)
    process.exitCode = isBerthError(err, 'cli_usage_invalid') ? EXIT_USAGE : EXIT_FAILURE
  }
}

function readConfig(): Config | undefined {
  try {
    return loadConfig(process.env)
  } catch (err) {
    reportStartFailure(err)
    process.exitCode = EXIT_FAILURE
    return undefined
  }
}

const SERVE_USAGE = `usage: berth serve

Runs the server on BERTH_HOST:BERTH_PORT (and /metrics on BERTH_METRICS_HOST:BERTH_METRICS_PORT
when that is set) with the configuration in the BERTH_* variables (see docs/configuration.md).
One server per BERTH_DATA_DIR: a second one refuses to start.`

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

/** A command's failure: the server's envelope or berth's error, as JSON on stderr. */
function reportError(err: unknown): void {
  if (err instanceof BerthApiError) {
    // The server's own error envelope, unchanged (or one in its shape, for a body that was not).
    const body = err.body ?? { error: { code: err.code, message: err.message } }
    process.stderr.write(`${JSON.stringify(body)}\n`)
  } else if (err instanceof BerthConnectionError) {
    const error = {
      code: 'cli_server_unreachable',
      message: err.message,
      details: { url: err.url },
    }
    process.stderr.write(`${JSON.stringify({ error })}\n`)
  } else if (isBerthError(err)) {
    const error = { code: err.code, message: err.message, details: err.details }
    process.stderr.write(`${JSON.stringify({ error })}\n`)
  } else {
    process.stderr.write(`berth: ${stackOf(err)}\n`)
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
    process.stderr.write(`berth: ${err.code}: ${line.replace(/\s*\n\s*/g, ' ')}\n`)
  }
}

function stackOf(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err)
}

await main(process.argv.slice(2))
