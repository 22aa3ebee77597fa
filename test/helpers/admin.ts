import { Writable } from 'node:stream'
import type { Rendered } from '../../src/cli/output.js'
import { buildProgram } from '../../src/cli/program.js'
import type { Config } from '../../src/config/config.js'

/**
 * An admin command (`org …`, `key …`) run in this process through the CLI's own command tree,
 * against `config`'s database: resolves the JSON it would print with `--json`.
 */
export async function runAdminCommand(
  args: readonly string[],
  config: Config,
): Promise<Record<string, unknown>> {
  let result: Rendered | undefined
  const quiet = new Writable({ write: (_chunk, _encoding, done) => done() })
  const program = buildProgram(
    { stdin: process.stdin, progress: quiet, out: () => undefined, helpOnError: () => undefined },
    {
      version: '0.0.0-test',
      config: () => config,
      serve: async () => {
        throw new Error('not here')
      },
      answered: (answer) => {
        result = answer
      },
    },
  )
  await program.parseAsync([...args], { from: 'user' })
  if (result === undefined) throw new Error(`berth ${args.join(' ')} answered nothing`)
  return result.json as Record<string, unknown>
}
