import type { Kysely, Migration } from 'kysely'

/** Dynamic batching settings per model: `null` batch size means automatic. */
export const serving: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('models').addColumn('max_batch_size', 'integer').execute()
    await db.schema
      .alterTable('models')
      .addColumn('max_queue_delay_us', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('models').dropColumn('max_queue_delay_us').execute()
    await db.schema.alterTable('models').dropColumn('max_batch_size').execute()
  },
}
