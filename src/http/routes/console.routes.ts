import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync } from 'fastify'
import { BerthError } from '../../errors/berth-error.js'

/**
 * What the console's page may do: its own script and styles, calls to this server only, no
 * frames around it (its forms hold an API key). uPlot and Preact set styles through the DOM,
 * which a style-src without 'unsafe-inline' allows.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ')

/**
 * `/console/`: the web console, a single page that calls the API with the key the user signs in
 * with (so it needs no session of its own), and `/console` redirecting there. Files are served
 * as they are built (`root`; `undefined`: not built, 404 `console_not_built`), revalidated on
 * each load (ETags), under a strict CSP.
 */
export const consoleRoutes: FastifyPluginAsync<{ readonly root: string | undefined }> = async (
  app,
  { root },
) => {
  app.get('/console', { schema: { hide: true } }, (_request, reply) =>
    reply.redirect('/console/', 302),
  )
  if (root === undefined) {
    app.get('/console/*', { schema: { hide: true } }, async () => {
      throw new BerthError(
        'console_not_built',
        'the web console is not built: run npm run build (npm ci does it)',
      )
    })
    return
  }
  // This plugin's routes only: Fastify encapsulates hooks.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('referrer-policy', 'no-referrer')
  })
  await app.register(fastifyStatic, {
    root,
    prefix: '/console/',
    index: 'index.html',
    cacheControl: true,
    maxAge: 0,
    immutable: false,
    etag: true,
    lastModified: true,
    decorateReply: false,
    schemaHide: true,
    // Source maps and licence notes are served too: the console is open source.
    wildcard: true,
  })
}
