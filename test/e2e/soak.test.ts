import assert from 'node:assert/strict'
import { it } from 'node:test'
import { runSoak } from '../../bench/soak.js'

// The short version of the reliability soak (`npm run bench:soak` runs it for 10 minutes and
// records the figures in bench/README.md): seconds of inference at 80% of the capacity measured
// first, beside uploads, deploys, undeploys and deletes without pause. Only what is not a timing
// is asserted: no errors, no leaked capacity, processes or files.
it('a short soak: no errors, no leaked capacity, processes or files', async () => {
  const report = await runSoak({ soakMs: 15_000, calibrateMs: 2000, load: 0.8, warmupShare: 0.2 })
  assert.deepEqual(report.errors, {})
  assert.ok(report.requests > 0 && report.churnCycles > 0, JSON.stringify(report))
  assert.equal(report.capacityLeaks, 0)
  assert.equal(report.leakedProcesses, 0)
  assert.equal(report.leakedFiles, 0)
})
