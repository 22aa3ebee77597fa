import { type Kysely, type Migration, sql } from 'kysely'

/**
 * A model's deployment, on its own row: what is wanted (`desired_state`) and where it is
 * (`deployment_state` with its reason and time). Existing models start never deployed.
 */
export const deployments: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    const columns: ReadonlyArray<readonly [string, string]> = [
      ['desired_state', "'not_deployed'"],
      ['deployment_state', "'not_deployed'"],
      ['deployment_reason', "'never_deployed'"],
    ]
    for (const [name, fallback] of columns) {
      await db.schema
        .alterTable('models')
        .addColumn(name, 'text', (c) => c.notNull().defaultTo(sql.raw(fallback)))
        .execute()
    }
    await db.schema
      .alterTable('models')
      .addColumn('deployment_since', 'text', (c) => c.notNull().defaultTo(''))
      .execute()
    await db.schema.alterTable('models').addColumn('deployment_message', 'text').execute()
    await db.schema.alterTable('models').addColumn('deployed_at', 'text').execute()
    await db
      .updateTable('models' as never)
      .set({ deployment_since: sql.ref('created_at') } as never)
      .execute()
  },

  async down(db: Kysely<unknown>): Promise<void> {
    for (const name of [
      'deployed_at',
      'deployment_message',
      'deployment_since',
      'deployment_reason',
      'deployment_state',
      'desired_state',
    ]) {
      await db.schema.alterTable('models').dropColumn(name).execute()
    }
  },
}
