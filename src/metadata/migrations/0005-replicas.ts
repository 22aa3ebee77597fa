import type { Kysely, Migration } from 'kysely'

/** Runner processes per deployment. */
export const replicas: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .alterTable('models')
      .addColumn('replicas', 'integer', (c) => c.notNull().defaultTo(1))
      .execute()
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('models').dropColumn('replicas').execute()
  },
}
