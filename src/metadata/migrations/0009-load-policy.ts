import type { Kysely, Migration } from 'kysely'

/**
 * When a model's runners are loaded (`eager` or `on_demand`) and how long an on-demand model may
 * sit idle before they are unloaded (`null`: the server's default). Models recorded before are
 * eager, as they were served. The desired state gains `on_demand` (a text column: no change).
 */
export const loadPolicy: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .alterTable('models')
      .addColumn('load_policy', 'text', (c) => c.notNull().defaultTo('eager'))
      .execute()
    await db.schema.alterTable('models').addColumn('idle_timeout_s', 'integer').execute()
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('models').dropColumn('idle_timeout_s').execute()
    await db.schema.alterTable('models').dropColumn('load_policy').execute()
  },
}
