import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import Fastify from 'fastify'
import { installErrorHandler } from '../../src/http/error-handler.js'
import { consoleRoutes } from '../../src/http/routes/console.routes.js'
import { startTestApp, type TestApp } from '../helpers/test-app.js'

describe('the web console files at /console/', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp()
  })
  after(() => t.close())

  it('redirects /console to /console/, its page under a strict CSP and no framing', async () => {
    const bare = await t.request({ method: 'GET', url: '/console' })
    assert.equal(bare.statusCode, 302)
    assert.equal(bare.headers.location, '/console/')
    const page = await t.request({ method: 'GET', url: '/console/' })
    assert.equal(page.statusCode, 200)
    assert.match(String(page.headers['content-type']), /^text\/html/)
    assert.match(page.body, /<div id="app">/)
    const csp = String(page.headers['content-security-policy'])
    for (const directive of ["script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) {
      assert.ok(csp.includes(directive), `${directive} in ${csp}`)
    }
    assert.ok(!csp.includes('unsafe'), csp)
    assert.equal(page.headers['x-content-type-options'], 'nosniff')
    assert.ok(page.headers.etag, 'an ETag, so a reload revalidates')
  })

  it('serves the bundle and answers an unknown file in the error envelope', async () => {
    const script = await t.request({ method: 'GET', url: '/console/console.js' })
    assert.equal(script.statusCode, 200)
    assert.match(String(script.headers['content-type']), /javascript/)
    const missing = await t.request({ method: 'GET', url: '/console/nothing-here.js' })
    assert.equal(missing.statusCode, 404)
    assert.equal(missing.json().error.code, 'route_not_found')
    // The console package's own manifest is one level up from its files, berth's three.
    for (const up of ['..%2fpackage.json', '..%2f..%2f..%2fpackage.json', '../package.json']) {
      const outside = await t.request({ method: 'GET', url: `/console/${up}` })
      assert.equal(outside.statusCode, 404, up)
      assert.doesNotMatch(outside.body, /"name"/, up)
    }
  })

  it('is left out of the OpenAPI document: a page, not an API', async () => {
    const doc = (await t.request({ method: 'GET', url: '/openapi.json' })).json()
    assert.ok(!Object.keys(doc.paths).some((path) => path.startsWith('/console')))
  })

  it('answers 404 console_not_built where the console was not built', async () => {
    const app = Fastify()
    installErrorHandler(app)
    await app.register(consoleRoutes, { root: undefined })
    const res = await app.inject({ method: 'GET', url: '/console/' })
    assert.equal(res.statusCode, 404)
    assert.equal(res.json().error.code, 'console_not_built')
    await app.close()
  })
})
