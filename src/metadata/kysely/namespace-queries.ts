import type { Kysely } from 'kysely'
import type { Namespace } from '../../domain/namespace.js'
import type { NamespaceChanges, Ref } from '../metadata-store.js'
import { namespaceNameTaken, namespaceNotEmpty, organizationNotFound } from '../store-errors.js'
import type { Database } from './database.js'
import type { DialectPolicy } from './dialect-policy.js'
import { namespaceRow, toNamespace } from './rows.js'

// The queries of the namespaces aggregate; the contract of each is on `NamespaceRecords`.

export async function createNamespace(
  db: Kysely<Database>,
  policy: DialectPolicy,
  namespace: Namespace,
): Promise<void> {
  try {
    await db.insertInto('namespaces').values(namespaceRow(namespace)).execute()
  } catch (err) {
    const violation = policy.classifyError(err)
    if (violation === 'unique') throw namespaceNameTaken(namespace.name, err)
    if (violation === 'foreign_key') throw organizationNotFound(namespace.organizationId, err)
    throw err
  }
}

export async function findNamespace(
  db: Kysely<Database>,
  organizationId: string,
  ref: Ref,
): Promise<Namespace | undefined> {
  const query = db
    .selectFrom('namespaces')
    .selectAll()
    .where('organization_id', '=', organizationId)
  const row = await ('id' in ref
    ? query.where('id', '=', ref.id)
    : query.where('name', '=', ref.name)
  ).executeTakeFirst()
  return row === undefined ? undefined : toNamespace(row)
}

export async function listNamespaces(
  db: Kysely<Database>,
  organizationId: string,
): Promise<Namespace[]> {
  const rows = await db
    .selectFrom('namespaces')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .orderBy('created_at')
    .orderBy('id')
    .execute()
  return rows.map(toNamespace)
}

export async function listAllNamespaces(db: Kysely<Database>): Promise<Namespace[]> {
  const rows = await db
    .selectFrom('namespaces')
    .selectAll()
    .orderBy('created_at')
    .orderBy('id')
    .execute()
  return rows.map(toNamespace)
}

export async function updateNamespace(
  db: Kysely<Database>,
  policy: DialectPolicy,
  organizationId: string,
  id: string,
  changes: NamespaceChanges,
): Promise<Namespace | undefined> {
  try {
    const row = await db
      .updateTable('namespaces')
      .set({
        ...(changes.name === undefined ? {} : { name: changes.name }),
        ...(changes.description === undefined ? {} : { description: changes.description }),
        updated_at: changes.updatedAt,
      })
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst()
    return row === undefined ? undefined : toNamespace(row)
  } catch (err) {
    if (policy.classifyError(err) === 'unique') throw namespaceNameTaken(changes.name ?? '', err)
    throw err
  }
}

export async function deleteNamespace(
  db: Kysely<Database>,
  policy: DialectPolicy,
  organizationId: string,
  id: string,
): Promise<boolean> {
  try {
    const result = await db
      .deleteFrom('namespaces')
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .executeTakeFirst()
    return Number(result.numDeletedRows) > 0
  } catch (err) {
    // The models' foreign key: the namespace still holds some.
    if (policy.classifyError(err) === 'foreign_key') throw namespaceNotEmpty(id, err)
    throw err
  }
}
