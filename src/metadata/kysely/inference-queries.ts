import type { ExpressionBuilder, Insertable, Kysely, Selectable } from 'kysely'
import {
  INFERENCE_OUTCOMES,
  type InferenceBucket,
  type InferenceOutcome,
  LATENCY_BUCKETS,
} from '../../domain/inference-stats.js'
import { compareText } from '../compare-text.js'
import type { InferenceBucketQuery } from '../metadata-store.js'
import { type Database, type InferenceHourlyTable, LATENCY_COLUMNS } from './database.js'

// The queries of the hourly inference records; the contract is on `InferenceRecords`.

if (LATENCY_COLUMNS.length !== LATENCY_BUCKETS) {
  // The histogram's buckets are columns: other bounds need a migration.
  throw new Error(
    `the latency histogram has ${LATENCY_BUCKETS} buckets but inference_hourly ${LATENCY_COLUMNS.length} columns`,
  )
}

/** The columns an upsert adds to. */
const COUNT_COLUMNS = [
  ...INFERENCE_OUTCOMES,
  ...LATENCY_COLUMNS,
  'latency_sum_ms',
  'cold_loads',
] as const

/** Rows per statement: far below SQLite's and PostgreSQL's bounds on parameters (36 a row). */
const ROWS_PER_INSERT = 200

type Row = Insertable<InferenceHourlyTable>
type Target = ExpressionBuilder<
  Database & { excluded: InferenceHourlyTable },
  'inference_hourly' | 'excluded'
>

export async function addInferenceBuckets(
  db: Kysely<Database>,
  buckets: readonly InferenceBucket[],
): Promise<void> {
  if (buckets.length === 0) return
  // In key order: two instances adding the same buckets lock their rows in the same order.
  const rows = [...buckets]
    .sort(
      (a, b) =>
        compareText(a.namespaceId, b.namespaceId) ||
        compareText(a.modelId, b.modelId) ||
        a.hour - b.hour,
    )
    .map(bucketRow)
  // One transaction: a flush that fails is retried whole, never counted twice in part.
  await db.transaction().execute(async (trx) => {
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      await trx
        .insertInto('inference_hourly')
        .values(rows.slice(i, i + ROWS_PER_INSERT))
        .onConflict((oc) =>
          oc.columns(['namespace_id', 'model_id', 'hour']).doUpdateSet((eb) => addedCounts(eb)),
        )
        .execute()
    }
  })
}

/** Each count column plus the row's; the first and last times widened. */
function addedCounts(eb: Target) {
  const set: Record<string, unknown> = {}
  for (const column of COUNT_COLUMNS) {
    set[column] = eb(`inference_hourly.${column}`, '+', eb.ref(`excluded.${column}`))
  }
  const stored = (c: 'first_request_at' | 'last_request_at') => eb.ref(`inference_hourly.${c}`)
  const added = (c: 'first_request_at' | 'last_request_at') => eb.ref(`excluded.${c}`)
  // A null on either side compares as unknown: the CASE keeps the stored one, unless it is null.
  set.first_request_at = eb
    .case()
    .when(
      eb.or([
        eb(stored('first_request_at'), 'is', null),
        eb(added('first_request_at'), '<', stored('first_request_at')),
      ]),
    )
    .then(added('first_request_at'))
    .else(stored('first_request_at'))
    .end()
  set.last_request_at = eb
    .case()
    .when(
      eb.or([
        eb(stored('last_request_at'), 'is', null),
        eb(added('last_request_at'), '>', stored('last_request_at')),
      ]),
    )
    .then(added('last_request_at'))
    .else(stored('last_request_at'))
    .end()
  return set as Partial<Row>
}

export async function listInferenceBuckets(
  db: Kysely<Database>,
  query: InferenceBucketQuery,
): Promise<InferenceBucket[]> {
  const model = query.model
  const rows = await db
    .selectFrom('inference_hourly')
    .selectAll()
    .where('organization_id', '=', query.organizationId)
    .where('namespace_id', '=', query.namespaceId)
    .where('hour', '>=', query.sinceHour)
    .$if(model !== undefined, (qb) =>
      qb.where((eb) => eb.or([eb('model_id', '=', model ?? ''), eb('name', '=', model ?? '')])),
    )
    .orderBy('model_id')
    .orderBy('hour')
    .execute()
  return rows.map(toBucket)
}

export async function dropInferenceBuckets(
  db: Kysely<Database>,
  beforeHour: number,
): Promise<number> {
  const result = await db
    .deleteFrom('inference_hourly')
    .where('hour', '<', beforeHour)
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}

function bucketRow(b: InferenceBucket): Row {
  const row: Record<string, unknown> = {
    namespace_id: b.namespaceId,
    model_id: b.modelId,
    hour: b.hour,
    organization_id: b.organizationId,
    name: b.name,
    version: b.version,
    latency_sum_ms: b.latencySumMs,
    cold_loads: b.coldLoads,
    first_request_at: b.firstRequestAt,
    last_request_at: b.lastRequestAt,
  }
  for (const o of INFERENCE_OUTCOMES) row[o] = b.outcomes[o]
  LATENCY_COLUMNS.forEach((column, i) => {
    row[column] = b.latencyCounts[i] ?? 0
  })
  return row as Row
}

function toBucket(row: Selectable<InferenceHourlyTable>): InferenceBucket {
  const outcomes = Object.fromEntries(INFERENCE_OUTCOMES.map((o) => [o, Number(row[o])])) as Record<
    InferenceOutcome,
    number
  >
  return {
    namespaceId: row.namespace_id,
    organizationId: row.organization_id,
    modelId: row.model_id,
    name: row.name,
    version: row.version,
    hour: Number(row.hour),
    outcomes,
    latencySumMs: Number(row.latency_sum_ms),
    latencyCounts: LATENCY_COLUMNS.map((column) => Number(row[column])),
    coldLoads: Number(row.cold_loads),
    firstRequestAt: row.first_request_at,
    lastRequestAt: row.last_request_at,
  }
}
