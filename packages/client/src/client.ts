import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Readable } from 'node:stream'
import createClient, { type Client } from 'openapi-fetch'
import type { components, paths } from './api.js'
import { archiveFrom, type PreparedArchive } from './archive.js'
import { BerthApiError, BerthConnectionError } from './errors.js'
import {
  type Datatype,
  datatypeOf,
  type OutputTensor,
  type Tensor,
  tensorBytes,
  tensorFromBytes,
} from './tensors.js'
import { type Deployment, isSettled, WaitTimeout } from './wait.js'

export type Schemas = components['schemas']

type JsonBody<P extends keyof paths, M extends 'post' | 'put' | 'patch'> =
  NonNullable<paths[P][M]> extends { requestBody?: { content: { 'application/json': infer B } } }
    ? B
    : never

/** The form fields of an upload, but the file (numbers and booleans are sent as their text). */
export type UploadFields = {
  readonly [K in keyof UploadForm as K extends 'file' ? never : K]?:
    | UploadForm[K]
    | number
    | boolean
} & Pick<UploadForm, 'name' | 'version' | 'model_format'>
type UploadForm = NonNullable<
  paths['/v1/namespaces/{namespace_id}/models']['post']['requestBody']
>['content']['multipart/form-data']

export interface UploadProgress {
  /** Bytes of the archive sent. */
  readonly sentBytes: number
  /** Bytes of the source read (the archive's, or the files being packed), of `sourceBytes`. */
  readonly readBytes: number
  readonly sourceBytes: number
  readonly elapsedMs: number
}

export interface UploadOptions {
  /** Called as the upload streams (at most every `progressEveryMs`), and once at its end. */
  readonly onProgress?: (progress: UploadProgress) => void
  readonly progressEveryMs?: number
}

export interface WaitOptions {
  /** How long to wait at most (5 minutes unless said); past it, `WaitTimeout`. */
  readonly timeoutMs?: number
  readonly intervalMs?: number
  /** Called with the deployment first and whenever its state, reason or message changes. */
  readonly onChange?: (deployment: Deployment) => void
}

export interface BerthClientOptions {
  /** The server, e.g. `http://127.0.0.1:8080`. */
  readonly url: string
  /** An API key (`sk_…`); unset for the routes that need none (health). */
  readonly apiKey?: string
  /** Another fetch (tests, proxies); the global one unless given. */
  readonly fetch?: (input: Request) => Promise<Response>
}

/**
 * A client of a berth server. `api` calls any route, typed from the server's OpenAPI document;
 * the methods wrap the common ones and throw `BerthApiError` (the envelope's `code`) for a
 * refusal and `BerthConnectionError` when the server cannot be reached.
 */
export class BerthClient {
  /** Every route, typed (openapi-fetch): `client.api.GET('/v1/node')`. */
  readonly api: Client<paths>
  readonly url: string
  /** The `authorization` header of every call (none without a key). */
  readonly #authorization: Readonly<Record<string, string>>
  /** The fetch every call but an upload's goes through; a failure to connect says so. */
  readonly #fetch: (input: Request) => Promise<Response>

  constructor(options: BerthClientOptions) {
    this.url = options.url.replace(/\/+$/, '')
    this.#authorization =
      options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` }
    const fetch = options.fetch ?? ((input: Request) => globalThis.fetch(input))
    const url = this.url
    this.#fetch = async (input: Request) => {
      try {
        return await fetch(input)
      } catch (err) {
        throw new BerthConnectionError(url, err)
      }
    }
    this.api = createClient<paths>({
      baseUrl: url,
      headers: this.#authorization,
      fetch: this.#fetch,
    })
  }

  health() {
    return ok(this.api.GET('/healthz'))
  }

  node() {
    return ok(this.api.GET('/v1/node'))
  }

  listNamespaces() {
    return ok(this.api.GET('/v1/namespaces'))
  }

  createNamespace(body: JsonBody<'/v1/namespaces', 'post'>) {
    return ok(this.api.POST('/v1/namespaces', { body }))
  }

  getNamespace(namespace: string) {
    return ok(this.api.GET('/v1/namespaces/{namespace}', { params: { path: { namespace } } }))
  }

  deleteNamespace(namespace: string) {
    return ok(this.api.DELETE('/v1/namespaces/{namespace}', { params: { path: { namespace } } }))
  }

  listModels(namespace: string) {
    const path = { namespace_id: namespace }
    return ok(this.api.GET('/v1/namespaces/{namespace_id}/models', { params: { path } }))
  }

  getModel(namespace: string, modelId: string) {
    const path = { namespace_id: namespace, model_id: modelId }
    return ok(this.api.GET('/v1/namespaces/{namespace_id}/models/{model_id}', { params: { path } }))
  }

  /** The model's last hour on this server, a point per minute (in memory: lost on a restart). */
  modelHistory(namespace: string, modelId: string) {
    const path = { namespace_id: namespace, model_id: modelId }
    return ok(
      this.api.GET('/v1/namespaces/{namespace_id}/models/{model_id}/history', { params: { path } }),
    )
  }

  deleteModel(namespace: string, modelId: string) {
    const path = { namespace_id: namespace, model_id: modelId }
    return ok(
      this.api.DELETE('/v1/namespaces/{namespace_id}/models/{model_id}', { params: { path } }),
    )
  }

  /** Deploys (with `settings`, a redeploy when they change); `wait`: the server's own wait. */
  deploy(
    namespace: string,
    modelId: string,
    settings?: JsonBody<'/v1/namespaces/{namespace_id}/models/{model_id}/deploy', 'post'>,
    options: { readonly wait?: boolean; readonly reload?: boolean } = {},
  ) {
    const path = { namespace_id: namespace, model_id: modelId }
    return ok(
      this.api.POST('/v1/namespaces/{namespace_id}/models/{model_id}/deploy', {
        params: {
          path,
          query: {
            wait: String(options.wait ?? false) as 'true' | 'false',
            reload: String(options.reload ?? false) as 'true' | 'false',
          },
        },
        ...(settings === undefined ? {} : { body: settings }),
      }),
    )
  }

  undeploy(namespace: string, modelId: string) {
    const path = { namespace_id: namespace, model_id: modelId }
    return ok(
      this.api.POST('/v1/namespaces/{namespace_id}/models/{model_id}/undeploy', {
        params: { path },
      }),
    )
  }

  /** An inference request in the Open Inference Protocol's JSON form. */
  infer(
    namespace: string,
    modelId: string,
    request: JsonBody<'/v1/namespaces/{namespace_id}/models/{model_id}/infer', 'post'>,
  ) {
    const path = { namespace_id: namespace, model_id: modelId }
    return ok(
      this.api.POST('/v1/namespaces/{namespace_id}/models/{model_id}/infer', {
        params: { path },
        body: request,
      }),
    )
  }

  /**
   * Reads the model until its deployment settles (deployed, failed, at rest as wanted, or
   * waiting for capacity nothing under way will free), and resolves it as it then stands.
   * Throws `WaitTimeout` past `timeoutMs`.
   */
  async waitForDeployment(
    namespace: string,
    modelId: string,
    options: WaitOptions = {},
  ): Promise<Deployment> {
    const until = Date.now() + (options.timeoutMs ?? 5 * 60_000)
    let last = ''
    for (;;) {
      const { model } = await this.getModel(namespace, modelId)
      const deployment = model.deployment as Deployment
      const said = `${deployment.state} ${deployment.reason} ${deployment.message ?? ''}`
      if (said !== last) options.onChange?.(deployment)
      last = said
      if (isSettled(deployment)) return deployment
      if (Date.now() > until) throw new WaitTimeout(namespace, modelId, deployment)
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 200))
    }
  }

  /**
   * Uploads a model: `source` is a path (a `.tar.gz`, a `.tar`, a folder, or a bare model file,
   * packed as it streams) or a stream of `.tar.gz` bytes. Memory stays flat whatever its size.
   * Resolves the server's answer.
   */
  async upload(
    namespace: string,
    source: string | Readable,
    fields: UploadFields,
    options: UploadOptions = {},
  ): Promise<Schemas['ModelUploadResponse']> {
    const archive: PreparedArchive =
      typeof source === 'string'
        ? await archiveFrom(source)
        : {
            stream: source,
            archiveBytes: undefined,
            sourceBytes: 0,
            sourceRead: () => 0,
          }
    const url = new URL(`${this.url}/v1/namespaces/${encodeURIComponent(namespace)}/models`)
    return (await sendMultipart(
      url,
      this.#authorization,
      fields,
      archive,
      options,
    )) as Schemas['ModelUploadResponse']
  }

  /**
   * Runs the model (by name, at `version` or its highest) on typed-array tensors, sent and
   * answered in the binary form of the Open Inference Protocol. Resolves the outputs by name.
   */
  async inferTensors(
    namespace: string,
    model: string,
    inputs: Readonly<Record<string, Tensor>>,
    options: { readonly version?: string; readonly outputs?: readonly string[] } = {},
  ): Promise<Record<string, OutputTensor>> {
    const entries = Object.entries(inputs)
    const payloads = entries.map(([, tensor]) => tensorBytes(tensor))
    const header = Buffer.from(
      JSON.stringify({
        inputs: entries.map(([name, tensor], i) => ({
          name,
          shape: tensor.shape,
          datatype: datatypeOf(tensor),
          parameters: { binary_data_size: payloads[i]?.byteLength ?? 0 },
        })),
        ...(options.outputs === undefined
          ? { parameters: { binary_data_output: true } }
          : {
              outputs: options.outputs.map((name) => ({
                name,
                parameters: { binary_data: true },
              })),
            }),
      }),
    )
    const version =
      options.version === undefined ? '' : `/versions/${encodeURIComponent(options.version)}`
    const response = await this.#fetch(
      new Request(`${this.url}/v2/models/${encodeURIComponent(model)}${version}/infer`, {
        method: 'POST',
        headers: {
          ...this.#authorization,
          'x-namespace': namespace,
          'content-type': 'application/octet-stream',
          'inference-header-content-length': String(header.length),
        },
        body: Buffer.concat([header, ...payloads]),
      }),
    )
    const body = Buffer.from(await response.arrayBuffer())
    if (!response.ok) throw new BerthApiError(response.status, parseJson(body))
    const length = Number(response.headers.get('inference-header-content-length') ?? body.length)
    const answer = JSON.parse(body.subarray(0, length).toString('utf8')) as {
      outputs: {
        name: string
        datatype: Datatype
        shape: number[]
        data?: unknown[]
        parameters?: { binary_data_size?: number }
      }[]
    }
    const outputs: Record<string, OutputTensor> = {}
    let offset = length
    for (const output of answer.outputs) {
      const size = output.parameters?.binary_data_size
      if (size === undefined) {
        outputs[output.name] = {
          datatype: output.datatype,
          shape: output.shape,
          data: (output.data ?? []) as string[],
        }
        continue
      }
      outputs[output.name] = tensorFromBytes(
        output.datatype,
        output.shape,
        body.subarray(offset, offset + size),
      )
      offset += size
    }
    return outputs
  }
}

async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call
  if (!response.ok || data === undefined) throw new BerthApiError(response.status, error)
  return data
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
}

/**
 * POSTs the fields and the archive as multipart/form-data, streaming the archive. The server
 * may answer before it has read everything (401, 413): the rest is not sent.
 */
function sendMultipart(
  url: URL,
  authorization: Readonly<Record<string, string>>,
  fields: UploadFields,
  archive: PreparedArchive,
  options: UploadOptions,
): Promise<unknown> {
  const boundary = `----berth-${Math.random().toString(16).slice(2)}${Date.now().toString(16)}`
  const text = (value: unknown) =>
    typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)
  const head = Buffer.from(
    [
      ...Object.entries(fields)
        .filter(([, value]) => value !== undefined)
        .map(
          ([name, value]) =>
            `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${text(value)}\r\n`,
        ),
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="model.tar.gz"\r\n` +
        'Content-Type: application/gzip\r\n\r\n',
    ].join(''),
  )
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  const headers: Record<string, string | number> = {
    ...authorization,
    'content-type': `multipart/form-data; boundary=${boundary}`,
  }
  // A known size lets the server refuse an oversized archive before it is sent.
  if (archive.archiveBytes !== undefined) {
    headers['content-length'] = head.length + archive.archiveBytes + tail.length
  }
  const started = Date.now()
  let sent = 0
  let told = 0
  const tell = (force: boolean) => {
    const now = Date.now()
    if (!force && now - told < (options.progressEveryMs ?? 100)) return
    told = now
    options.onProgress?.({
      sentBytes: sent,
      readBytes: archive.sourceRead(),
      sourceBytes: archive.sourceBytes,
      elapsedMs: now - started,
    })
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = send(url, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', reject)
      res.on('end', () => {
        tell(true)
        archive.stream.unpipe(req)
        archive.stream.destroy()
        req.destroy()
        const body = parseJson(Buffer.concat(chunks))
        const status = res.statusCode ?? 0
        if (status !== 200) reject(new BerthApiError(status, body))
        else resolve(body)
      })
    })
    req.on('error', (err) => reject(new BerthConnectionError(url.origin, err)))
    archive.stream.on('error', (err) => {
      req.destroy()
      reject(err)
    })
    archive.stream.on('data', (chunk: Buffer) => {
      sent += chunk.length
      tell(false)
    })
    req.write(head)
    archive.stream.pipe(req, { end: false })
    archive.stream.on('end', () => req.end(tail))
  })
}
