import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BerthClient } from '@berth/client'
import type { Config } from '../config/config.js'
import { BerthError } from '../errors/berth-error.js'

/**
 * The `@berth/client` the CLI talks through (its only HTTP client), for the server and key to
 * use: flags first, then `BERTH_URL` / `BERTH_API_KEY`, then the bootstrap key file a local
 * server wrote. Throws `cli_usage_invalid` when there is no key.
 */
export async function clientFor(
  config: Config,
  flags: { readonly url?: string | undefined; readonly apiKey?: string | undefined },
): Promise<BerthClient> {
  const url = flags.url ?? config.client.url
  // The bootstrap key is the local server's: never sent to another one.
  const local = url.replace(/\/+$/, '') === config.http.publicUrl.replace(/\/+$/, '')
  const apiKey =
    flags.apiKey ?? config.client.apiKey ?? (local ? await bootstrapKey(config.dataDir) : undefined)
  if (apiKey === undefined) {
    throw usage(
      "no API key: pass --api-key or set BERTH_API_KEY (the bootstrap key file is used only for this machine's own server)",
    )
  }
  return new BerthClient({ url, apiKey })
}

/** The bootstrap key file a local server wrote, when this machine has one. */
async function bootstrapKey(dataDir: string): Promise<string | undefined> {
  try {
    return (await readFile(join(dataDir, 'bootstrap-api-key'), 'utf8')).trim() || undefined
  } catch {
    return undefined
  }
}

export function usage(message: string): BerthError {
  return new BerthError('cli_usage_invalid', message)
}
