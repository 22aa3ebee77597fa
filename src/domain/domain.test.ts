import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isBerthError } from '../errors/berth-error.js'
import { generateApiKey, hashApiKey, sameHash } from './api-key.js'
import { looksLikeId, newId } from './ids.js'
import { NAMESPACE_NAME_PATTERN } from './namespace.js'
import { assertCustomModelsEnabled, parseTier, TIERS } from './organization.js'

describe('domain rules', () => {
  it('makes prefixed random ids', () => {
    const ids = new Set(Array.from({ length: 100 }, () => newId('ns')))
    assert.equal(ids.size, 100)
    for (const id of ids) assert.ok(looksLikeId('ns', id))
    assert.equal(looksLikeId('ns', newId('org')), false)
    assert.equal(looksLikeId('ns', 'ns_short'), false)
  })

  it('generates sk_ keys with 32 random bytes and hashes them', () => {
    const key = generateApiKey()
    assert.match(key, /^sk_[A-Za-z0-9_-]{43}$/)
    assert.equal(Buffer.from(key.slice(3), 'base64url').length, 32)
    assert.notEqual(generateApiKey(), key)
    assert.match(hashApiKey(key), /^[0-9a-f]{64}$/)
    assert.equal(sameHash(hashApiKey(key), hashApiKey(key)), true)
    assert.equal(sameHash(hashApiKey(key), hashApiKey(`${key}x`)), false)
    assert.equal(sameHash(hashApiKey(key), 'abcd'), false)
  })

  it('knows the tiers and that only enterprise has custom models', () => {
    for (const tier of TIERS) assert.equal(parseTier(tier), tier)
    assert.throws(
      () => parseTier('gold'),
      (err) => isBerthError(err, 'tier_invalid'),
    )
    for (const tier of TIERS) {
      const principal = { organizationId: 'org_x', keyId: 'key_x', tier }
      if (tier === 'enterprise') assertCustomModelsEnabled(principal)
      else {
        assert.throws(
          () => assertCustomModelsEnabled(principal),
          (err) => isBerthError(err, 'custom_models_not_enabled'),
        )
      }
    }
  })

  it('accepts namespace names that cannot be mistaken for ids', () => {
    for (const ok of ['prod', 'my_namespace', 'Team-A1', 'nsx', 'ns-1']) {
      assert.ok(NAMESPACE_NAME_PATTERN.test(ok), ok)
    }
    for (const bad of ['ns_abc', 'ab', '1abc', '_abc', 'a b', 'a'.repeat(65), 'é-name']) {
      assert.ok(!NAMESPACE_NAME_PATTERN.test(bad), bad)
    }
  })
})
