import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { LightMyRequestResponse } from 'fastify'
import { mlpModel } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { type FormPart, multipartBody } from './multipart.js'
import { BOOTSTRAP_KEY, type TestApp } from './test-app.js'

/** Every file berth keeps for models: staged uploads, stored archives, unpacked files. */
export async function keptFiles(dataDir: string): Promise<string[]> {
  const found: string[] = []
  for (const sub of ['tmp', 'archives', 'models']) {
    const entries = await readdir(join(dataDir, sub), {
      recursive: true,
      withFileTypes: true,
    }).catch(() => [])
    for (const e of entries) if (e.isFile()) found.push(join(e.parentPath, e.name))
  }
  return found.sort()
}

/** Upload form fields; `undefined` leaves a field out. */
export function formFields(values: Record<string, string | undefined>): FormPart[] {
  return Object.entries(values)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([name, value]) => ({ name, value }))
}

export function archivePart(content: Buffer): FormPart {
  return { name: 'file', filename: 'model.tar.gz', content }
}

/** POSTs a multipart upload to a namespace of the test app. */
export function uploadModel(
  t: TestApp,
  namespace: string,
  parts: FormPart[],
  key: string = BOOTSTRAP_KEY,
  query = '',
): Promise<LightMyRequestResponse> {
  const { payload, headers } = multipartBody(parts)
  return t.request({
    method: 'POST',
    url: `/v1/namespaces/${namespace}/models${query}`,
    key,
    body: payload,
    headers,
  })
}

/** The upload route's answer (Mixpeek's `ModelUploadResponse`). */
export interface UploadAnswer {
  readonly success: boolean
  readonly model_id: string
  readonly deployment_status: 'deployed' | 'pending' | 'failed' | 'not_deployed'
  readonly endpoint: string
  readonly model_archive_url: string
}

/**
 * Packs `files` into a .tar.gz and uploads it with `?wait=true` and the bootstrap key, as
 * version 1.0.0 unless `fields` says otherwise. Resolves the answer; throws unless it is a 200.
 */
export async function uploadAndWait(
  t: TestApp,
  namespace: string,
  fields: Record<string, string>,
  files: Record<string, Buffer | string>,
): Promise<UploadAnswer> {
  const res = await uploadModel(
    t,
    namespace,
    [...formFields({ version: '1.0.0', ...fields }), archivePart(await tarGzOf(files))],
    BOOTSTRAP_KEY,
    '?wait=true',
  )
  if (res.statusCode !== 200) throw new Error(`upload answered ${res.statusCode}: ${res.body}`)
  return res.json()
}

/** Creates a namespace with the bootstrap key and returns its id. */
export async function createNamespace(t: TestApp, name: string): Promise<string> {
  const res = await t.request({
    method: 'POST',
    url: '/v1/namespaces',
    key: BOOTSTRAP_KEY,
    body: { namespace_name: name },
  })
  if (res.statusCode !== 200) throw new Error(`cannot create namespace ${name}: ${res.body}`)
  return res.json().namespace_id
}

/** The model record (`GET …/models/{model_id}`'s `model`), read with the bootstrap key. */
export async function getModel(t: TestApp, namespace: string, modelId: string) {
  const res = await t.request({
    method: 'GET',
    url: `/v1/namespaces/${namespace}/models/${modelId}`,
    key: BOOTSTRAP_KEY,
  })
  if (res.statusCode !== 200) throw new Error(`cannot get ${modelId}: ${res.body}`)
  return res.json().model
}

/**
 * A tiny ONNX MLP (`x`: [n, 4] → [n, 2]) uploaded as `mlp` 1.0.0 into a new namespace and deployed
 * (`memory_gb` 0.5); resolves the namespace id and the pids of the runners serving now.
 */
export async function deployTinyMlp(
  t: TestApp,
  namespace: string,
): Promise<{ namespaceId: string; runnerPids: number[] }> {
  const namespaceId = await createNamespace(t, namespace)
  const answer = await uploadAndWait(
    t,
    namespaceId,
    { name: 'mlp', model_format: 'onnx', memory_gb: '0.5' },
    { 'model.onnx': mlpModel(4, 8, 2, 1) },
  )
  if (answer.deployment_status !== 'deployed') throw new Error(`not deployed: ${answer.model_id}`)
  const runnerPids = (await readdir(join(t.dataDir, 'run'))).map(Number)
  return { namespaceId, runnerPids }
}
