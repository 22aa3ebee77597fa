import { type Kysely, type Migration, sql } from 'kysely'

/**
 * The file store's archive URLs were `file://` URLs of the server's own paths, shown to clients
 * as `model_archive_url`; they are `berth://archives/KEY` now. Rows recorded before are rewritten
 * from their key. (S3 URLs, `s3://bucket/key`, are kept.)
 */
export const archiveUrls: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const table of ['models', 'org_models']) {
      await sql`update ${sql.table(table)} set archive_url = ${'berth://archives/'} || archive_key where archive_url like ${'file://%'}`.execute(
        db,
      )
    }
  },

  // The paths are not recorded anywhere else: going back keeps the new URLs.
  async down(): Promise<void> {},
}
