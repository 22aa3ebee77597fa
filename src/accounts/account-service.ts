import { type ApiKey, generateApiKey, hashApiKey, sameHash } from '../domain/api-key.js'
import { looksLikeId, newId } from '../domain/ids.js'
import {
  ORGANIZATION_NAME_PATTERN,
  type Organization,
  type Principal,
  type Tier,
} from '../domain/organization.js'
import { BerthError, invalidInputs } from '../errors/berth-error.js'
import type { AccountRecords } from '../metadata/metadata-store.js'
import { organizationNotFound } from '../metadata/store-errors.js'

/** The organization created on first start. */
export const DEFAULT_ORGANIZATION_NAME = 'default'

export interface CreatedApiKey {
  readonly keyId: string
  /** The key in clear: shown once, never stored. */
  readonly apiKey: string
  readonly organizationId: string
}

export type BootstrapResult =
  | { readonly created: false }
  | {
      readonly created: true
      readonly organizationId: string
      /** Set only when berth generated the key (no `BERTH_BOOTSTRAP_API_KEY`). */
      readonly generatedKey: string | undefined
    }

export interface AccountServiceOptions {
  readonly now?: () => Date
}

/** Organizations, their tiers and API keys, and turning a bearer key into a Principal. */
export class AccountService {
  readonly #store: AccountRecords
  readonly #now: () => Date

  constructor(store: AccountRecords, options: AccountServiceOptions = {}) {
    this.#store = store
    this.#now = options.now ?? (() => new Date())
  }

  /**
   * On an empty store, creates the `default` enterprise organization with one key: `presetKey`
   * when given, otherwise a generated one that the result carries (once). Does nothing when any
   * organization exists. Safe to race with other instances.
   */
  async bootstrap(presetKey: string | undefined): Promise<BootstrapResult> {
    const now = this.#timestamp()
    const organization: Organization = {
      id: newId('org'),
      name: DEFAULT_ORGANIZATION_NAME,
      tier: 'enterprise',
      createdAt: now,
      updatedAt: now,
    }
    const apiKey = presetKey ?? generateApiKey()
    const key = this.#keyRecord(organization.id, apiKey, 'bootstrap', now)
    const created = await this.#store.bootstrapOrganization(organization, key)
    if (!created) return { created: false }
    return {
      created: true,
      organizationId: organization.id,
      generatedKey: presetKey === undefined ? apiKey : undefined,
    }
  }

  /** Throws `request_validation_failed` for a bad name, `organization_name_taken` for a used one. */
  async createOrganization(name: string, tier: Tier): Promise<Organization> {
    if (!ORGANIZATION_NAME_PATTERN.test(name)) {
      throw invalidInputs([
        {
          field: 'name',
          message: `must match ${ORGANIZATION_NAME_PATTERN.source}`,
          type: 'string_pattern_mismatch',
        },
      ])
    }
    const now = this.#timestamp()
    const organization: Organization = {
      id: newId('org'),
      name,
      tier,
      createdAt: now,
      updatedAt: now,
    }
    await this.#store.createOrganization(organization)
    return organization
  }

  /** The organization with this id or name; throws `organization_not_found`. */
  async getOrganization(ref: string): Promise<Organization> {
    const organization = await this.#store.findOrganization(
      looksLikeId('org', ref) ? { id: ref } : { name: ref },
    )
    if (organization === undefined) throw organizationNotFound(ref)
    return organization
  }

  /** Every organization, by name. */
  listOrganizations(): Promise<Organization[]> {
    return this.#store.listOrganizations()
  }

  /** The organization's keys: their ids, labels and times (never a key, nor its hash). */
  async listApiKeys(organizationRef: string): Promise<Omit<ApiKey, 'hash'>[]> {
    const organization = await this.getOrganization(organizationRef)
    return (await this.#store.listApiKeys(organization.id)).map(({ hash: _, ...key }) => key)
  }

  /** Throws `organization_not_found`. Idempotent. */
  async setTier(ref: string, tier: Tier): Promise<Organization> {
    const organization = await this.getOrganization(ref)
    return this.#store.setOrganizationTier(organization.id, tier, this.#timestamp())
  }

  /** A new key for the organization (id or name). The clear key is in the result only. */
  async createApiKey(organizationRef: string, label: string | undefined): Promise<CreatedApiKey> {
    const organization = await this.getOrganization(organizationRef)
    const apiKey = generateApiKey()
    const key = this.#keyRecord(organization.id, apiKey, label ?? null, this.#timestamp())
    await this.#store.createApiKey(key)
    return { keyId: key.id, apiKey, organizationId: organization.id }
  }

  /** Throws `api_key_not_found`. Idempotent: a revoked key stays revoked at its first time. */
  revokeApiKey(keyId: string): Promise<ApiKey> {
    return this.#store.revokeApiKey(keyId, this.#timestamp())
  }

  /**
   * The caller behind an `Authorization` header value. Throws `api_key_missing` without a bearer
   * key and `api_key_invalid` for an unknown or revoked one (the two are indistinguishable).
   */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '')
    const presented = match?.[1]
    if (presented === undefined) {
      throw new BerthError('api_key_missing', 'send an API key as "Authorization: Bearer sk_…"')
    }
    const hash = hashApiKey(presented)
    const found = await this.#store.findCredential(hash)
    // The lookup is by digest, so its timing says nothing about the key; the final comparison is
    // constant-time anyway, as a second line of defence.
    if (found === undefined || !sameHash(found.key.hash, hash) || found.key.revokedAt !== null) {
      throw invalidKey()
    }
    const { key, organization } = found
    return { organizationId: organization.id, tier: organization.tier, keyId: key.id }
  }

  #keyRecord(organizationId: string, apiKey: string, label: string | null, now: string): ApiKey {
    return {
      id: newId('key'),
      organizationId,
      hash: hashApiKey(apiKey),
      label,
      createdAt: now,
      revokedAt: null,
    }
  }

  #timestamp(): string {
    return this.#now().toISOString()
  }
}

function invalidKey(): BerthError {
  return new BerthError('api_key_invalid', 'the API key is not valid')
}
