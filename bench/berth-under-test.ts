import { BERTH_BIN } from '../test/helpers/berth-process.js'

/**
 * The `berth` command a bench measures: this checkout's, or another checkout's named by
 * `BENCH_BERTH_BIN` (its `bin/berth`, built). So one harness measures two builds the same way,
 * on the same day: a change's before and after, or today's tree against an older commit's.
 *
 *   BENCH_BERTH_BIN=/tmp/before/bin/berth npm run bench:small-models
 */
export const BERTH_UNDER_TEST = process.env.BENCH_BERTH_BIN || BERTH_BIN
