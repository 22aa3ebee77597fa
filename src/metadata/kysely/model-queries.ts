import type { Kysely, Updateable } from 'kysely'
import type { DeploymentObservation, DesiredState } from '../../domain/deployment-state.js'
import type { Model, ServingSettings } from '../../domain/model.js'
import type { DesiredStateRow } from '../metadata-store.js'
import { modelAlreadyExists, namespaceNotFound, orgModelNotFound } from '../store-errors.js'
import type { Database, ModelsTable } from './database.js'
import type { DialectPolicy } from './dialect-policy.js'
import { orgModelExists } from './org-model-queries.js'
import { modelRow, observationColumns, servingColumns, toDesiredStateRow, toModel } from './rows.js'

// The queries of the models aggregate, deployments included (a deployment is columns of its
// model's row); the contracts are on `ModelRecords` and `DeploymentRecords`.

export async function createModel(
  db: Kysely<Database>,
  policy: DialectPolicy,
  model: Model,
): Promise<void> {
  try {
    await db.insertInto('models').values(modelRow(model)).execute()
  } catch (err) {
    const violation = policy.classifyError(err)
    if (violation === 'unique') throw modelAlreadyExists(model.namespaceId, model.modelId, err)
    if (violation === 'foreign_key') {
      // Which reference broke: the namespace, or the org model being enabled.
      const orgUploadId = model.orgUploadId
      if (orgUploadId !== null && !(await orgModelExists(db, orgUploadId))) {
        throw orgModelNotFound(model.modelId, err)
      }
      throw namespaceNotFound(model.namespaceId, err)
    }
    throw err
  }
}

export async function findModel(
  db: Kysely<Database>,
  namespaceId: string,
  modelId: string,
): Promise<Model | undefined> {
  const row = await db
    .selectFrom('models')
    .selectAll()
    .where('namespace_id', '=', namespaceId)
    .where('model_id', '=', modelId)
    .executeTakeFirst()
  return row === undefined ? undefined : toModel(row)
}

export async function listModels(db: Kysely<Database>, namespaceId: string): Promise<Model[]> {
  const rows = await db
    .selectFrom('models')
    .selectAll()
    .where('namespace_id', '=', namespaceId)
    .orderBy('created_at')
    .orderBy('model_id')
    .execute()
  return rows.map(toModel)
}

export function setServing(
  db: Kysely<Database>,
  namespaceId: string,
  modelId: string,
  serving: ServingSettings,
): Promise<boolean> {
  return updateModel(db, namespaceId, modelId, servingColumns(serving))
}

export async function deleteModel(
  db: Kysely<Database>,
  namespaceId: string,
  modelId: string,
): Promise<boolean> {
  const result = await db
    .deleteFrom('models')
    .where('namespace_id', '=', namespaceId)
    .where('model_id', '=', modelId)
    .executeTakeFirst()
  return Number(result.numDeletedRows) > 0
}

export function setDeploymentStatus(
  db: Kysely<Database>,
  namespaceId: string,
  modelId: string,
  observed: DeploymentObservation,
): Promise<boolean> {
  return updateModel(db, namespaceId, modelId, observationColumns(observed))
}

export function setDesiredState(
  db: Kysely<Database>,
  namespaceId: string,
  modelId: string,
  desired: DesiredState,
): Promise<boolean> {
  return updateModel(db, namespaceId, modelId, { desired_state: desired })
}

export async function listArchiveKeys(db: Kysely<Database>): Promise<Set<string>> {
  const rows = await db
    .selectFrom('models')
    .select('archive_key')
    .union(db.selectFrom('org_models').select('archive_key'))
    .execute()
  return new Set(rows.map((row) => row.archive_key))
}

export async function listModelsToReconcile(db: Kysely<Database>): Promise<Model[]> {
  const rows = await db
    .selectFrom('models')
    .selectAll()
    .where((eb) =>
      eb.or([
        eb('desired_state', '=', 'deployed'),
        eb('deployment_state', 'not in', ['not_deployed', 'failed']),
      ]),
    )
    .orderBy('created_at')
    .orderBy('namespace_id')
    .orderBy('model_id')
    .execute()
  return rows.map(toModel)
}

export async function listDesiredStates(db: Kysely<Database>): Promise<DesiredStateRow[]> {
  const rows = await db
    .selectFrom('models')
    .select(['namespace_id', 'model_id', 'upload_id', 'desired_state', 'deploy_generation'])
    .execute()
  return rows.map(toDesiredStateRow)
}

export async function bumpDeployGeneration(
  db: Kysely<Database>,
  namespaceId: string,
  modelId: string,
): Promise<number | undefined> {
  // One statement: two instances bumping at once both count.
  const row = await db
    .updateTable('models')
    .set((eb) => ({ deploy_generation: eb('deploy_generation', '+', 1) }))
    .where('namespace_id', '=', namespaceId)
    .where('model_id', '=', modelId)
    .returning('deploy_generation')
    .executeTakeFirst()
  return row === undefined ? undefined : Number(row.deploy_generation)
}

/** Sets columns of one model's row; resolves whether the model was there. */
async function updateModel(
  db: Kysely<Database>,
  namespaceId: string,
  modelId: string,
  columns: Updateable<ModelsTable>,
): Promise<boolean> {
  const result = await db
    .updateTable('models')
    .set(columns)
    .where('namespace_id', '=', namespaceId)
    .where('model_id', '=', modelId)
    .executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}
