import type { Kysely } from 'kysely'
import type { OrgModel, OrgModelValidation } from '../../domain/org-model.js'
import { organizationNotFound, orgModelAlreadyExists } from '../store-errors.js'
import type { Database } from './database.js'
import type { DialectPolicy } from './dialect-policy.js'
import { orgModelRow, toOrgModel, validationColumns } from './rows.js'

// The queries of the organization model registry; the contracts are on `OrgModelRecords`.

export async function createOrgModel(
  db: Kysely<Database>,
  policy: DialectPolicy,
  model: OrgModel,
): Promise<void> {
  try {
    await db.insertInto('org_models').values(orgModelRow(model)).execute()
  } catch (err) {
    const violation = policy.classifyError(err)
    if (violation === 'unique') throw orgModelAlreadyExists(model.modelId, err)
    if (violation === 'foreign_key') throw organizationNotFound(model.organizationId, err)
    throw err
  }
}

export async function findOrgModel(
  db: Kysely<Database>,
  organizationId: string,
  modelId: string,
): Promise<OrgModel | undefined> {
  const row = await db
    .selectFrom('org_models')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('model_id', '=', modelId)
    .executeTakeFirst()
  return row === undefined ? undefined : toOrgModel(row)
}

export async function findOrgModelByUpload(
  db: Kysely<Database>,
  uploadId: string,
): Promise<OrgModel | undefined> {
  const row = await db
    .selectFrom('org_models')
    .selectAll()
    .where('upload_id', '=', uploadId)
    .executeTakeFirst()
  return row === undefined ? undefined : toOrgModel(row)
}

/** Whether the upload's org model exists: tells which reference a failed enable broke. */
export async function orgModelExists(db: Kysely<Database>, uploadId: string): Promise<boolean> {
  const row = await db
    .selectFrom('org_models')
    .select('upload_id')
    .where('upload_id', '=', uploadId)
    .executeTakeFirst()
  return row !== undefined
}

export async function listOrgModels(
  db: Kysely<Database>,
  organizationId: string,
): Promise<OrgModel[]> {
  const rows = await db
    .selectFrom('org_models')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .orderBy('created_at')
    .orderBy('model_id')
    .execute()
  return rows.map(toOrgModel)
}

export async function setOrgModelValidation(
  db: Kysely<Database>,
  uploadId: string,
  validation: OrgModelValidation,
): Promise<boolean> {
  const result = await db
    .updateTable('org_models')
    .set(validationColumns(validation))
    .where('upload_id', '=', uploadId)
    .executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}

export async function deleteOrgModel(
  db: Kysely<Database>,
  policy: DialectPolicy,
  uploadId: string,
): Promise<'deleted' | 'enabled' | 'missing'> {
  try {
    const result = await db
      .deleteFrom('org_models')
      .where('upload_id', '=', uploadId)
      .executeTakeFirst()
    return Number(result.numDeletedRows) > 0 ? 'deleted' : 'missing'
  } catch (err) {
    // A namespace model still refers to it.
    if (policy.classifyError(err) === 'foreign_key') return 'enabled'
    throw err
  }
}
