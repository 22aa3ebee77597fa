import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { newId } from '../../src/domain/ids.js'
import {
  emptyBucket,
  type InferenceBucket,
  LATENCY_BUCKETS,
} from '../../src/domain/inference-stats.js'
import type { MetadataStore } from '../../src/metadata/metadata-store.js'

const HOUR = 493_000

/** A bucket of a fresh namespace's model, with a few of everything counted. */
function bucket(overrides: Partial<InferenceBucket> = {}): InferenceBucket {
  const model = {
    namespaceId: newId('ns'),
    organizationId: newId('org'),
    modelId: 'mlp_1_0_0',
    name: 'mlp',
    version: '1.0.0',
  }
  const latencyCounts = new Array<number>(LATENCY_BUCKETS).fill(0)
  latencyCounts[0] = 1
  latencyCounts[3] = 2
  latencyCounts[LATENCY_BUCKETS - 1] = 1
  return {
    ...emptyBucket(model, HOUR),
    outcomes: { success: 4, bad_request: 2, not_ready: 1, timeout: 1, rejected: 3, error: 1 },
    latencySumMs: 40_012.75,
    latencyCounts,
    coldLoads: 1,
    firstRequestAt: '2026-04-01T10:00:02.000Z',
    lastRequestAt: '2026-04-01T10:40:00.000Z',
    ...overrides,
  }
}

const scaled = (b: InferenceBucket, n: number) => ({
  outcomes: Object.fromEntries(Object.entries(b.outcomes).map(([o, c]) => [o, c * n])),
  latencySumMs: b.latencySumMs * n,
  latencyCounts: b.latencyCounts.map((c) => c * n),
  coldLoads: b.coldLoads * n,
})

const countsOf = (b: InferenceBucket | undefined) =>
  b && {
    outcomes: b.outcomes,
    latencySumMs: b.latencySumMs,
    latencyCounts: b.latencyCounts,
    coldLoads: b.coldLoads,
  }

/**
 * The hourly inference records (`InferenceRecords`), run by `metadataStoreContract` on its
 * store: every adapter adds counts rather than setting them, whoever adds at once.
 */
export function inferenceRecordsContract(store: () => MetadataStore): void {
  describe('inference records', () => {
    const list = (b: InferenceBucket, extra: { sinceHour?: number; model?: string } = {}) =>
      store().listInferenceBuckets({
        organizationId: b.organizationId,
        namespaceId: b.namespaceId,
        sinceHour: extra.sinceHour ?? 0,
        model: extra.model,
      })

    it('stores a bucket as given, and adds a second one of the same model and hour to it', async () => {
      const first = bucket()
      await store().addInferenceBuckets([first])
      assert.deepEqual(await list(first), [first])
      const later = bucket({
        ...first,
        name: 'renamed',
        firstRequestAt: '2026-04-01T10:00:01.000Z',
        lastRequestAt: '2026-04-01T10:20:00.000Z',
      })
      await store().addInferenceBuckets([later])
      const [sum] = await list(first)
      assert.deepEqual(countsOf(sum), scaled(first, 2))
      // The names first written stay; the times widen to both.
      assert.equal(sum?.name, 'mlp')
      assert.equal(sum?.firstRequestAt, '2026-04-01T10:00:01.000Z')
      assert.equal(sum?.lastRequestAt, '2026-04-01T10:40:00.000Z')
    })

    it('keeps the times of a bucket without requests (cold loads only) apart', async () => {
      const loads = bucket({ firstRequestAt: null, lastRequestAt: null })
      await store().addInferenceBuckets([loads])
      assert.deepEqual(await list(loads), [loads])
      await store().addInferenceBuckets([{ ...loads, lastRequestAt: '2026-04-01T10:59:00.000Z' }])
      const [sum] = await list(loads)
      assert.equal(sum?.firstRequestAt, null)
      assert.equal(sum?.lastRequestAt, '2026-04-01T10:59:00.000Z')
    })

    it('loses no count when many add to one bucket at once (several instances)', async () => {
      const one = bucket()
      await Promise.all(Array.from({ length: 8 }, () => store().addInferenceBuckets([one])))
      const [sum] = await list(one)
      assert.deepEqual(countsOf(sum), scaled(one, 8))
    })

    it("lists one organization's namespace, from an hour on, by model then hour", async () => {
      const base = bucket()
      const at = (hour: number, modelId = base.modelId, name = base.name, version = '1.0.0') => ({
        ...base,
        hour,
        modelId,
        name,
        version,
      })
      const rows = [
        at(HOUR, 'mlp_2_0_0', 'mlp', '2.0.0'),
        at(HOUR - 30),
        at(HOUR),
        at(HOUR - 2, 'alpha_1_0_0', 'alpha'),
        // Elsewhere: another namespace, and the same namespace id under another organization.
        { ...at(HOUR), namespaceId: newId('ns') },
        { ...at(HOUR, 'alpha_1_0_0', 'alpha'), organizationId: newId('org') },
      ]
      await store().addInferenceBuckets(rows)
      const keys = (bs: InferenceBucket[]) => bs.map((b) => `${b.modelId}@${HOUR - b.hour}`)
      assert.deepEqual(keys(await list(base)), [
        'alpha_1_0_0@2',
        'mlp_1_0_0@30',
        'mlp_1_0_0@0',
        'mlp_2_0_0@0',
      ])
      assert.deepEqual(keys(await list(base, { sinceHour: HOUR - 2 })), [
        'alpha_1_0_0@2',
        'mlp_1_0_0@0',
        'mlp_2_0_0@0',
      ])
      // A name selects every version; a model_id one.
      assert.deepEqual(keys(await list(base, { sinceHour: HOUR - 2, model: 'mlp' })), [
        'mlp_1_0_0@0',
        'mlp_2_0_0@0',
      ])
      assert.deepEqual(keys(await list(base, { model: 'mlp_2_0_0' })), ['mlp_2_0_0@0'])
      assert.deepEqual(await list(base, { model: 'nothing' }), [])
    })

    it('adds many buckets in one call', async () => {
      const base = bucket()
      const many = Array.from({ length: 450 }, (_, i) => ({ ...base, hour: HOUR - i }))
      await store().addInferenceBuckets(many)
      await store().addInferenceBuckets(many)
      const back = await list(base)
      assert.equal(back.length, 450)
      for (const b of back) assert.deepEqual(countsOf(b), scaled(base, 2))
    })

    it('drops the buckets before an hour and says how many', async () => {
      const base = bucket()
      const past = HOUR + 10_000
      await store().addInferenceBuckets([
        { ...base, hour: past - 1 },
        { ...base, hour: past },
        { ...base, hour: past + 1 },
      ])
      // Every bucket of the earlier cases is older too.
      assert.ok((await store().dropInferenceBuckets(past)) >= 1)
      assert.deepEqual(
        (await list(base)).map((b) => b.hour),
        [past, past + 1],
      )
      assert.equal(await store().dropInferenceBuckets(past), 0)
    })
  })
}
