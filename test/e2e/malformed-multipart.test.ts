import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, keptFiles } from '../helpers/uploads.js'

const part = (boundary: string, name: string, value: string, filename?: string) =>
  `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename === undefined ? '' : `; filename="${filename}"`}\r\n\r\n${value}`

/** Multipart bodies the parser refuses: 400 `request_malformed` (once a 500), nothing kept. */
describe('malformed multipart uploads', () => {
  let t: TestApp
  let ns: string
  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'multipart')
  })
  after(() => t.close())

  const cases: ReadonlyArray<readonly [string, string, string]> = [
    ['no boundary', 'multipart/form-data', 'whatever'],
    ['an empty boundary', 'multipart/form-data; boundary=', 'whatever'],
    ['a boundary over 256 characters', `multipart/form-data; boundary=${'b'.repeat(300)}`, 'x'],
    [
      'another boundary than the body uses',
      'multipart/form-data; boundary=abc',
      `${part('zzz', 'name', 'modelname')}\r\n--zzz--\r\n`,
    ],
    [
      'a body that ends inside the archive',
      'multipart/form-data; boundary=abc',
      `${part('abc', 'name', 'modelname')}\r\n${part('abc', 'file', 'not the end', 'm.tar.gz')}`,
    ],
  ]
  for (const [what, contentType, payload] of cases) {
    it(`refuses ${what}`, async () => {
      const res = await t.app.server.inject({
        method: 'POST',
        url: `/v1/namespaces/${ns}/models`,
        headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, 'content-type': contentType },
        payload,
      })
      assert.equal(res.statusCode, 400, res.body)
      assert.equal(res.json().error.code, 'request_malformed')
      assert.deepEqual(await keptFiles(t.dataDir), [])
    })
  }
})
