import type { Kysely, Migration } from 'kysely'

/**
 * Inference traffic per model and hour (`GET /v1/analytics/inference/performance`): requests by
 * outcome, the successful requests' latency as a sum and a histogram of 21 fixed buckets (one
 * column each, `latency_b00` to `latency_b20`, so that instances sharing the database add to
 * them in one upsert), and cold loads. No foreign keys: the history outlives a deleted model,
 * and retention (720 hours) removes it. Keyed by hour (whole hours since the epoch).
 */
export const inferenceHourly: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    let table = db.schema
      .createTable('inference_hourly')
      .addColumn('namespace_id', 'text', (c) => c.notNull())
      .addColumn('model_id', 'text', (c) => c.notNull())
      .addColumn('hour', 'integer', (c) => c.notNull())
      .addColumn('organization_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('version', 'text', (c) => c.notNull())
    for (const outcome of ['success', 'bad_request', 'not_ready', 'timeout', 'rejected', 'error']) {
      table = table.addColumn(outcome, 'integer', (c) => c.notNull().defaultTo(0))
    }
    table = table.addColumn('latency_sum_ms', 'double precision', (c) => c.notNull().defaultTo(0))
    for (let i = 0; i < 21; i++) {
      const column = `latency_b${String(i).padStart(2, '0')}`
      table = table.addColumn(column, 'integer', (c) => c.notNull().defaultTo(0))
    }
    await table
      .addColumn('cold_loads', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('first_request_at', 'text')
      .addColumn('last_request_at', 'text')
      .addPrimaryKeyConstraint('inference_hourly_pkey', ['namespace_id', 'model_id', 'hour'])
      .execute()
    // Retention drops by hour alone.
    await db.schema
      .createIndex('inference_hourly_hour')
      .on('inference_hourly')
      .column('hour')
      .execute()
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('inference_hourly').execute()
  },
}
