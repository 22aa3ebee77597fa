import { BerthError } from '../errors/berth-error.js'

/** Mixpeek's account tiers. */
export const TIERS = ['free', 'pro', 'team', 'enterprise'] as const
export type Tier = (typeof TIERS)[number]

/** Organization names: what an operator types on the command line. */
export const ORGANIZATION_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/

export interface Organization {
  readonly id: string
  readonly name: string
  readonly tier: Tier
  readonly createdAt: string
  readonly updatedAt: string
}

/** The caller of a request, established from its API key. */
export interface Principal {
  readonly organizationId: string
  readonly tier: Tier
  readonly keyId: string
}

export function parseTier(value: string): Tier {
  if (!(TIERS as readonly string[]).includes(value)) {
    throw new BerthError('tier_invalid', `tier must be one of ${TIERS.join(', ')}`, {
      details: { tier: value, allowed: TIERS },
    })
  }
  return value as Tier
}

/** Custom models (upload, deploy, inference) are an enterprise feature, as in Mixpeek. */
export function assertCustomModelsEnabled(principal: Principal): void {
  if (principal.tier !== 'enterprise') {
    throw new BerthError(
      'custom_models_not_enabled',
      'custom models need an organization on the enterprise tier',
      { details: { tier: principal.tier, required_tier: 'enterprise' } },
    )
  }
}
