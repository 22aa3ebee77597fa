import type { components, paths } from '@berth/client'
import createClient from 'openapi-fetch'

export type Schemas = components['schemas']
export type Namespace = Schemas['Namespace']
export type ModelItem = Schemas['ModelListItem']
export type ModelDetail = Schemas['CustomModel']
export type History =
  paths['/v1/namespaces/{namespace_id}/models/{model_id}/history']['get']['responses'][200]['content']['application/json']
export type DeploySettings = NonNullable<Schemas['DeployRequest']>

/** An answer in berth's error envelope, or a failure to reach the server (`code` network_error). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }

  /** From a response body: the envelope's code and message, or the status alone. */
  static of(status: number, body: unknown): ApiError {
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error
    const code = typeof error?.code === 'string' ? error.code : `http_${status}`
    const message = typeof error?.message === 'string' ? error.message : `HTTP ${status}`
    return new ApiError(status, code, message)
  }
}

export type Api = ReturnType<typeof apiFor>

/** The API as the holder of `key` sees it, typed from berth's OpenAPI document. */
export function apiFor(key: string) {
  const client = createClient<paths>({
    baseUrl: location.origin,
    headers: { authorization: `Bearer ${key}` },
  })
  return { client, key }
}

/** The answer's data, or its error as an `ApiError`. */
export async function dataOf<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let answer: { data?: T; error?: unknown; response: Response }
  try {
    answer = await call
  } catch (err) {
    throw new ApiError(0, 'network_error', `berth did not answer: ${String(err)}`)
  }
  if (answer.error !== undefined || !answer.response.ok) {
    throw ApiError.of(answer.response.status, answer.error)
  }
  return answer.data as T
}

export function describeError(err: unknown): string {
  if (err instanceof ApiError) return `${err.message} (${err.code})`
  return err instanceof Error ? err.message : String(err)
}
