import type { Kysely, Migration } from 'kysely'

/**
 * Counts the redeploys asked of a model through any instance, so every instance can tell that
 * its runners were loaded for an older one (new serving settings, `?reload=true`).
 */
export const deployGeneration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .alterTable('models')
      .addColumn('deploy_generation', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('models').dropColumn('deploy_generation').execute()
  },
}
