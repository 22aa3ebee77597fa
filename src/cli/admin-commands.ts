import { parseArgs } from 'node:util'
import { AccountService } from '../accounts/account-service.js'
import type { Config } from '../config/config.js'
import { parseTier } from '../domain/organization.js'
import { BerthError } from '../errors/berth-error.js'
import { createMetadataStore } from '../metadata/create-metadata-store.js'

export const ADMIN_USAGE = `usage:
  berth serve                                   run the server (what npm start runs)
  berth org create NAME [--tier TIER]           TIER: free | pro | team | enterprise (default free)
  berth org set-tier ORG TIER                   ORG: organization id or name
  berth key create --org ORG [--label LABEL]    prints the new key once
  berth key revoke KEY_ID
Every command prints one JSON object on stdout and works while the server runs.`

/** A command's answer: one JSON object for stdout. */
type Output = Readonly<Record<string, unknown>>

/**
 * Runs one admin command against the configured metadata store and returns its JSON answer.
 * Throws `cli_usage_invalid` for bad arguments and the store's errors otherwise.
 */
export async function runAdminCommand(args: readonly string[], config: Config): Promise<Output> {
  const [noun, verb, ...rest] = args
  const command = `${noun ?? ''} ${verb ?? ''}`.trim()
  const handler = COMMANDS[command]
  if (handler === undefined) throw usage(`unknown command "${command}"`)
  const store = await createMetadataStore(config.metadata)
  try {
    return await handler(rest, new AccountService(store))
  } finally {
    await store.close()
  }
}

const COMMANDS: Readonly<
  Record<string, (args: readonly string[], accounts: AccountService) => Promise<Output>>
> = {
  'org create': async (args, accounts) => {
    const { positionals, values } = parse(args, { tier: { type: 'string' } })
    const [name] = exactly(positionals, 1, 'org create NAME')
    const organization = await accounts.createOrganization(name, parseTier(values.tier ?? 'free'))
    return { organization_id: organization.id, name: organization.name, tier: organization.tier }
  },
  'org set-tier': async (args, accounts) => {
    const { positionals } = parse(args, {})
    const [ref, tier] = exactly(positionals, 2, 'org set-tier ORG TIER')
    const organization = await accounts.setTier(ref, parseTier(tier))
    return { organization_id: organization.id, name: organization.name, tier: organization.tier }
  },
  'key create': async (args, accounts) => {
    const { positionals, values } = parse(args, {
      org: { type: 'string' },
      label: { type: 'string' },
    })
    exactly(positionals, 0, 'key create --org ORG [--label LABEL]')
    if (values.org === undefined) throw usage('key create needs --org ORG')
    const key = await accounts.createApiKey(values.org, values.label)
    return { key_id: key.keyId, api_key: key.apiKey, organization_id: key.organizationId }
  },
  'key revoke': async (args, accounts) => {
    const { positionals } = parse(args, {})
    const [keyId] = exactly(positionals, 1, 'key revoke KEY_ID')
    const key = await accounts.revokeApiKey(keyId)
    return { key_id: key.id, organization_id: key.organizationId, revoked_at: key.revokedAt }
  },
}

type StringOptions = Record<string, { type: 'string' }>

function parse<O extends StringOptions>(args: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true })
  } catch (err) {
    throw usage(err instanceof Error ? err.message : String(err))
  }
}

function exactly<N extends 0 | 1 | 2>(
  positionals: string[],
  count: N,
  synopsis: string,
): N extends 2 ? [string, string] : N extends 1 ? [string] : [] {
  if (positionals.length !== count) throw usage(`expected: berth ${synopsis}`)
  return positionals as never
}

function usage(message: string): BerthError {
  return new BerthError('cli_usage_invalid', message)
}
