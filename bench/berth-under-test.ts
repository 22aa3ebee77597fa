import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { BERTH_BIN } from '../test/helpers/berth-process.js'

/**
 * The `berth` command a bench measures: this checkout's, or another checkout's named by
 * `BENCH_BERTH_BIN` (its `bin/berth`, built). So one harness measures two builds the same way,
 * on the same day: a change's before and after, or today's tree against an older commit's.
 * A name that is not there stops the bench; the bench's output names the build it measured.
 *
 *   BENCH_BERTH_BIN=/tmp/before/bin/berth npm run bench:small-models
 */
export const BERTH_UNDER_TEST = chosen(process.env.BENCH_BERTH_BIN)

function chosen(named: string | undefined): string {
  // Empty: this checkout's, as unset (a script's `BENCH_BERTH_BIN=$other` with no other).
  if (named === undefined || named === '') return BERTH_BIN
  const path = resolve(named)
  if (!existsSync(path)) {
    throw new Error(`BENCH_BERTH_BIN names no berth command: '${named}'`)
  }
  return path
}

/** The line a bench prints first, so its output says which build it measured. */
export function berthUnderTestLine(): string {
  return `berth under test: ${BERTH_UNDER_TEST}${BERTH_UNDER_TEST === BERTH_BIN ? ' (this checkout)' : ''}`
}
