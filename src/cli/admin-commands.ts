import { access } from 'node:fs/promises'
import { AccountService } from '../accounts/account-service.js'
import type { Config } from '../config/config.js'
import { parseTier } from '../domain/organization.js'
import { BerthError } from '../errors/berth-error.js'
import { createMetadataStore } from '../metadata/create-metadata-store.js'
import { fieldLines, type Rendered, table } from './output.js'

/**
 * The admin commands: organizations and keys, written straight into the configured metadata
 * store (they work while the server runs). Each says on stderr which database it used.
 */

export interface AdminIo {
  /** Where the database used is said (stderr); unset: not said (`--json`: stderr is for errors). */
  readonly note: NodeJS.WritableStream | undefined
  /** Whether a SQLite database that does not exist yet may be created (`--init`). */
  readonly init: boolean
}

export function orgCreate(config: Config, io: AdminIo, name: string, tier: string) {
  return withAccounts(config, io, async (accounts) => {
    const organization = await accounts.createOrganization(name, parseTier(tier))
    return rendered({
      organization_id: organization.id,
      name: organization.name,
      tier: organization.tier,
    })
  })
}

export function orgSetTier(config: Config, io: AdminIo, ref: string, tier: string) {
  return withAccounts(config, io, async (accounts) => {
    const organization = await accounts.setTier(ref, parseTier(tier))
    return rendered({
      organization_id: organization.id,
      name: organization.name,
      tier: organization.tier,
    })
  })
}

export function orgList(config: Config, io: AdminIo) {
  return withAccounts(config, io, async (accounts) => {
    const organizations = (await accounts.listOrganizations()).map((o) => ({
      organization_id: o.id,
      name: o.name,
      tier: o.tier,
      created_at: o.createdAt,
    }))
    return {
      json: { organizations },
      human: table([
        ['NAME', 'ID', 'TIER', 'CREATED'],
        ...organizations.map((o) => [o.name, o.organization_id, o.tier, o.created_at]),
      ]),
    }
  })
}

/** The organization's keys: ids, labels and times (a key itself is shown once, at creation). */
export function keyList(config: Config, io: AdminIo, org: string) {
  return withAccounts(config, io, async (accounts) => {
    const keys = (await accounts.listApiKeys(org)).map((k) => ({
      key_id: k.id,
      label: k.label,
      created_at: k.createdAt,
      revoked_at: k.revokedAt,
    }))
    return {
      json: { keys },
      human:
        keys.length === 0
          ? 'no keys\n'
          : table([
              ['KEY', 'LABEL', 'CREATED', 'REVOKED'],
              ...keys.map((k) => [k.key_id, k.label ?? '-', k.created_at, k.revoked_at ?? '-']),
            ]),
    }
  })
}

export function keyCreate(config: Config, io: AdminIo, org: string, label: string | undefined) {
  return withAccounts(config, io, async (accounts) => {
    const key = await accounts.createApiKey(org, label)
    return rendered({
      key_id: key.keyId,
      api_key: key.apiKey,
      organization_id: key.organizationId,
    })
  })
}

export function keyRevoke(config: Config, io: AdminIo, keyId: string) {
  return withAccounts(config, io, async (accounts) => {
    const key = await accounts.revokeApiKey(keyId)
    return rendered({
      key_id: key.id,
      organization_id: key.organizationId,
      revoked_at: key.revokedAt,
    })
  })
}

function rendered(object: Readonly<Record<string, unknown>>): Rendered {
  return { json: object, human: fieldLines(object) }
}

/**
 * Opens the configured store for one command. A SQLite database that is not there is refused
 * (`cli_database_missing`) unless `init`: an admin command run with the wrong environment would
 * otherwise create a database the server never reads, and succeed.
 */
async function withAccounts(
  config: Config,
  io: AdminIo,
  run: (accounts: AccountService) => Promise<Rendered>,
): Promise<Rendered> {
  const { metadata } = config
  if (metadata.driver === 'sqlite') {
    const exists = await access(metadata.path).then(
      () => true,
      () => false,
    )
    if (!exists && !io.init) {
      throw new BerthError(
        'cli_database_missing',
        `there is no database at ${metadata.path}: set BERTH_DATA_DIR (or BERTH_DATABASE_URL) as the server has it, or pass --init to create one`,
        { details: { path: metadata.path } },
      )
    }
    io.note?.write(`berth: using the SQLite database ${metadata.path}\n`)
  } else {
    io.note?.write('berth: using the PostgreSQL database of BERTH_DATABASE_URL\n')
  }
  const store = await createMetadataStore(metadata)
  try {
    return await run(new AccountService(store))
  } finally {
    await store.close()
  }
}
