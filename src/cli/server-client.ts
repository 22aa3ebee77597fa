import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Config } from '../config/config.js'
import { BerthError } from '../errors/berth-error.js'

/** A server's refusal, carrying its error envelope (printed unchanged by the CLI). */
export class ServerRefused extends Error {
  readonly status: number
  readonly body: unknown

  constructor(status: number, body: unknown) {
    const error = (body as { error?: { message?: string } } | null)?.error
    super(`the server answered ${status}: ${error?.message ?? 'no message'}`)
    this.status = status
    this.body = body
  }
}

/** Where the CLI talks to, and with which key. */
export interface ServerTarget {
  /** Base URL without a trailing slash. */
  readonly url: string
  readonly apiKey: string
}

/**
 * The server and key to use: flags first, then `BERTH_URL` / `BERTH_API_KEY`, then the bootstrap
 * key file a local server wrote. Throws `cli_usage_invalid` when there is no key.
 */
export async function serverTarget(
  config: Config,
  flags: { readonly url?: string | undefined; readonly apiKey?: string | undefined },
): Promise<ServerTarget> {
  const apiKey = flags.apiKey ?? config.client.apiKey ?? (await bootstrapKey(config.dataDir))
  if (apiKey === undefined) {
    throw usage(
      'no API key: pass --api-key, set BERTH_API_KEY, or run where the bootstrap key file is',
    )
  }
  return { url: (flags.url ?? config.client.url).replace(/\/+$/, ''), apiKey }
}

/** Calls a JSON route; resolves the JSON answer of a 200, rejects with `ServerRefused` otherwise. */
export async function callServer(
  target: ServerTarget,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  let res: Response
  try {
    res = await fetch(`${target.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${target.apiKey}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
  } catch (err) {
    throw new BerthError('cli_server_unreachable', `cannot reach ${target.url}`, {
      cause: err,
      details: { url: target.url },
    })
  }
  const text = await res.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = { error: { message: text } }
  }
  if (res.status !== 200) throw new ServerRefused(res.status, json)
  return json as Record<string, unknown>
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
