import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { it } from 'node:test'
import { UploadSignature } from './upload-signature.js'

it('accepts its own signature until it expires, and nothing tampered', () => {
  const signer = new UploadSignature(randomBytes(32))
  const now = Date.UTC(2026, 10, 27)
  const expires = now / 1000 + 60
  const signature = signer.sign('upl_abc', expires)
  assert.ok(signer.verify('upl_abc', String(expires), signature, now))
  assert.ok(!signer.verify('upl_abc', String(expires), signature, (expires + 1) * 1000))
  assert.ok(!signer.verify('upl_abd', String(expires), signature, now))
  assert.ok(!signer.verify('upl_abc', String(expires + 3600), signature, now))
  const flipped = `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`
  assert.ok(!signer.verify('upl_abc', String(expires), flipped, now))
  assert.ok(!signer.verify('upl_abc', 'soon', signature, now))
  assert.ok(
    !new UploadSignature(randomBytes(32)).verify('upl_abc', String(expires), signature, now),
  )
  assert.throws(() => new UploadSignature(randomBytes(8)))
})
