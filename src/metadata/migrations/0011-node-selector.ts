import type { Kysely, Migration } from 'kysely'

/**
 * The node labels a model's runners' nodes must carry (`{"gpu":"a100"}`, JSON), for schedulers
 * that place runners on several nodes. Models recorded before may run on any node: `{}`.
 */
export const nodeSelector: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .alterTable('models')
      .addColumn('node_selector', 'text', (c) => c.notNull().defaultTo('{}'))
      .execute()
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('models').dropColumn('node_selector').execute()
  },
}
