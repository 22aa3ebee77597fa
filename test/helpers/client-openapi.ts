import { fileURLToPath } from 'node:url'
import { startTestApp } from './test-app.js'

/** The OpenAPI document @berth/client is generated from. */
export const CLIENT_OPENAPI = fileURLToPath(
  new URL('../../../packages/client/openapi.json', import.meta.url),
)

/**
 * The server's `/openapi.json` as the client takes it: without `servers`, which names wherever
 * the server runs (BERTH_PUBLIC_URL).
 */
export async function clientOpenApi(): Promise<Record<string, unknown>> {
  const t = await startTestApp({ BERTH_SPARE_RUNNERS: '0' })
  try {
    const { servers: _, ...spec } = (
      await t.request({ method: 'GET', url: '/openapi.json' })
    ).json() as Record<string, unknown>
    return spec
  } finally {
    await t.close()
  }
}
