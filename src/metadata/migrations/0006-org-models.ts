import type { Kysely, Migration } from 'kysely'

/**
 * The organization registry: models uploaded once per organization, and the namespace models
 * that enable them (`models.org_upload_id`). The foreign key has no ON DELETE action: deleting
 * an org model still enabled somewhere fails in the database itself, whatever races it.
 */
export const orgModels: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('org_models')
      .addColumn('upload_id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) =>
        c.notNull().references('organizations.id').onDelete('cascade'),
      )
      .addColumn('model_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('version', 'text', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('format', 'text', (c) => c.notNull())
      .addColumn('framework', 'text')
      .addColumn('task_type', 'text')
      .addColumn('num_cpus', 'double precision', (c) => c.notNull())
      .addColumn('num_gpus', 'integer', (c) => c.notNull())
      .addColumn('memory_bytes', 'bigint', (c) => c.notNull())
      .addColumn('archive_key', 'text', (c) => c.notNull())
      .addColumn('archive_url', 'text', (c) => c.notNull())
      .addColumn('archive_sha256', 'text')
      .addColumn('archive_bytes', 'bigint')
      .addColumn('validation_status', 'text', (c) => c.notNull())
      .addColumn('validation_errors', 'text', (c) => c.notNull())
      .addColumn('manifest', 'text')
      .addColumn('upload_expires_at', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('org_models_organization_id_model_id', ['organization_id', 'model_id'])
      .execute()
    await db.schema
      .alterTable('models')
      .addColumn('org_upload_id', 'text', (c) => c.references('org_models.upload_id'))
      .execute()
  },

  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('models').dropColumn('org_upload_id').execute()
    await db.schema.dropTable('org_models').execute()
  },
}
