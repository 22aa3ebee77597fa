import type { Kysely, Migration } from 'kysely'

/**
 * Models in namespaces. `namespace_id` has no ON DELETE action on purpose: deleting a namespace
 * that still holds models fails in the database itself, which becomes `namespace_not_empty`.
 */
export const models: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('models')
      .addColumn('namespace_id', 'text', (c) => c.notNull().references('namespaces.id'))
      .addColumn('model_id', 'text', (c) => c.notNull())
      .addColumn('upload_id', 'text', (c) => c.notNull().unique())
      .addColumn('organization_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('version', 'text', (c) => c.notNull())
      .addColumn('format', 'text', (c) => c.notNull())
      .addColumn('framework', 'text')
      .addColumn('task_type', 'text')
      .addColumn('num_cpus', 'double precision', (c) => c.notNull())
      .addColumn('num_gpus', 'integer', (c) => c.notNull())
      .addColumn('memory_bytes', 'bigint', (c) => c.notNull())
      .addColumn('archive_key', 'text', (c) => c.notNull())
      .addColumn('archive_url', 'text', (c) => c.notNull())
      .addColumn('archive_sha256', 'text', (c) => c.notNull())
      .addColumn('archive_bytes', 'bigint', (c) => c.notNull())
      .addColumn('manifest', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('models_pkey', ['namespace_id', 'model_id'])
      .execute()
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('models').execute()
  },
}
