import assert from 'node:assert/strict'
import { mlpModel } from '../../fixtures/onnx-models.js'
import { tarGzOf } from '../../fixtures/tar-builder.js'
import type { MixpeekCall } from '../../helpers/mixpeek-contract.js'
import { KEY, type MixpeekSession, UNKNOWN_NAMESPACE } from './session.js'

// Mixpeek's organization registry, and the refusals of berth that Mixpeek's document does not
// list (test/e2e/mixpeek-conformance.test.ts runs them after the namespace scenarios).

/**
 * Organization registry: presigned upload, confirm, list, get, enable, available, disable,
 * delete, and their refusals.
 */
export async function orgRegistryScenario(s: MixpeekSession): Promise<void> {
  const create = 'generate_upload_url_v1_models_uploads_post'
  const archive = await tarGzOf({ 'model.onnx': mlpModel(16, 32, 4, 7) })
  const resources = { num_cpus: 1, num_gpus: 0, memory: 512 * 1024 ** 2 }
  const ticket = await s.expect(200, create, {
    key: KEY,
    json: s.mixpeek.sampleBody(create, {
      model_format: 'onnx',
      file_size_bytes: archive.length,
      resource_requirements: resources,
      framework: 'onnx',
      task_type: null,
    }),
  })
  assert.equal(ticket.body.name, 'custom_embedder')
  await s.expect(401, create, { json: s.mixpeek.sampleBody(create) })
  await s.expect(422, create, {
    key: KEY,
    json: s.mixpeek.sampleBody(create, { name: '9lives' }),
    malformed: true,
  })
  // Before its archive comes, the org model is listed and shown, validation pending.
  const pending = await s.expect(200, 'get_model_v1_models__model_id__get', {
    key: KEY,
    path: { model_id: 'custom_embedder_1_0_0' },
  })
  assert.equal(pending.body.model.validation_status, 'pending')
  const listedPending = await s.expect(200, 'list_models_v1_models_get', { key: KEY })
  assert.equal(listedPending.body.models[0].validation_status, 'pending')
  // The archive goes to the presigned URL: the artifact store's, not a Mixpeek operation.
  assert.equal((await s.putArchive(ticket.body.presigned_url, archive)).statusCode, 200)

  const confirm = 'confirm_upload_v1_models_uploads__upload_id__confirm_post'
  await s.expect(401, confirm, { path: { upload_id: ticket.body.upload_id }, emptyJson: true })
  await s.expect(422, confirm, {
    key: KEY,
    path: { upload_id: ticket.body.upload_id },
    json: { file_size_bytes: 'big' },
    malformed: true,
  })
  const confirmed = await s.expect(200, confirm, {
    key: KEY,
    path: { upload_id: ticket.body.upload_id },
    json: s.mixpeek.sampleBody(confirm, { etag: null, file_size_bytes: archive.length }),
  })
  assert.equal(confirmed.body.validation_status, 'passed')
  const orgModel = confirmed.body.model_id as string
  await s.expect(404, confirm, { key: KEY, path: { upload_id: 'upl_nothing' }, emptyJson: true })
  // A second org model, confirmed with an empty body.
  const second = await s.expect(200, create, {
    key: KEY,
    json: s.mixpeek.sampleBody(create, {
      name: 'sentiment_model',
      model_format: 'onnx',
      file_size_bytes: null,
      resource_requirements: resources,
    }),
  })
  assert.equal((await s.putArchive(second.body.presigned_url, archive)).statusCode, 200)
  const secondModel = (
    await s.expect(200, confirm, {
      key: KEY,
      path: { upload_id: second.body.upload_id },
      emptyJson: true,
    })
  ).body.model_id as string

  // An archive that fails validation: confirmed as failed, and shown so.
  const broken = await s.expect(200, create, {
    key: KEY,
    json: s.mixpeek.sampleBody(create, {
      name: 'image_classifier',
      model_format: 'onnx',
      file_size_bytes: null,
      resource_requirements: resources,
    }),
  })
  await s.putArchive(broken.body.presigned_url, Buffer.from('not a tarball'))
  const refused = await s.expect(200, confirm, {
    key: KEY,
    path: { upload_id: broken.body.upload_id },
    emptyJson: true,
  })
  assert.equal(refused.body.validation_status, 'failed')
  const brokenModel = refused.body.model_id as string
  const failed = await s.expect(200, 'get_model_v1_models__model_id__get', {
    key: KEY,
    path: { model_id: brokenModel },
  })
  assert.equal(failed.body.model.validation_status, 'failed')

  const list = 'list_models_v1_models_get'
  const listed = await s.expect(200, list, { key: KEY })
  assert.deepEqual(
    listed.body.models.map((m: { model_id: string }) => m.model_id).sort(),
    [orgModel, secondModel, brokenModel].sort(),
  )
  await s.expect(401, list)

  const get = 'get_model_v1_models__model_id__get'
  assert.equal(
    (await s.expect(200, get, { key: KEY, path: { model_id: orgModel } })).body.model.model_id,
    orgModel,
  )
  await s.expect(404, get, { key: KEY, path: { model_id: 'nothing_1_0_0' } })
  await s.expect(401, get, { path: { model_id: orgModel } })

  const enable = 'enable_org_model_v1_namespaces__namespace_id__models_org__model_id__enable_post'
  const path = { namespace_id: s.ns.id, model_id: orgModel }
  await s.expect(401, enable, { path, json: s.mixpeek.sampleBody(enable) })
  await s.expect(422, enable, { key: KEY, path, json: { deploy: 'yes' }, malformed: true })
  const enabled = await s.expect(200, enable, {
    key: KEY,
    path,
    json: s.mixpeek.sampleBody(enable, { deploy: true, resource_overrides: resources }),
  })
  assert.equal(enabled.body.model_id, orgModel)
  // Enabled, it is a namespace model: Mixpeek's CustomModelDocument, then deployed.
  assert.equal((await s.settled(orgModel)).deployed, true)
  await s.expect(200, enable, {
    key: KEY,
    path: { namespace_id: s.ns.name, model_id: secondModel },
    emptyJson: true,
  })
  await s.expect(404, enable, {
    key: KEY,
    path: { namespace_id: s.ns.id, model_id: 'nothing_1_0_0' },
    emptyJson: true,
  })

  const available = 'list_available_org_models_v1_namespaces__namespace_id__models_available_get'
  const offered = await s.expect(200, available, { key: KEY, path: { namespace_id: s.ns.id } })
  assert.deepEqual(
    offered.body.models
      .filter((m: { enabled_in_namespace: boolean }) => m.enabled_in_namespace)
      .map((m: { model_id: string }) => m.model_id)
      .sort(),
    [orgModel, secondModel].sort(),
  )
  // Enabled: the org model's document shows where it serves.
  const shown = await s.expect(200, get, { key: KEY, path: { model_id: orgModel } })
  assert.equal(shown.body.model.deployed, true)
  assert.equal(typeof shown.body.model.deployment_info.deployed_at, 'string')
  await s.expect(404, available, { key: KEY, path: { namespace_id: UNKNOWN_NAMESPACE } })
  await s.expect(401, available, { path: { namespace_id: s.ns.id } })

  const disable =
    'disable_org_model_v1_namespaces__namespace_id__models_org__model_id__disable_post'
  await s.expect(401, disable, { path })
  await s.expect(200, disable, { key: KEY, path })
  await s.expect(404, disable, { key: KEY, path })

  const del = 'delete_model_v1_models__model_id__delete'
  await s.expect(401, del, { path: { model_id: orgModel } })
  await s.expect(200, del, { key: KEY, path: { model_id: orgModel } })
  await s.expect(404, del, { key: KEY, path: { model_id: orgModel } })
}

/**
 * berth's refusals with a status Mixpeek's document does not list for the operation (409 on a
 * taken name or a model in use, 413 on an archive past the limit): still its `ErrorResponse`.
 */
export async function undocumentedRefusals(s: MixpeekSession): Promise<void> {
  const undocumented = async (
    status: number,
    errorCode: string,
    op: string,
    options: MixpeekCall,
  ) =>
    assert.equal(s.code(await s.expect(status, op, { ...options, undocumented: true })), errorCode)
  const create = 'create_namespace_v1_namespaces_post'
  await undocumented(409, 'namespace_name_taken', create, {
    key: KEY,
    json: s.mixpeek.sampleBody(create, { namespace_name: s.ns.name }),
  })
  const other = await s.expect(200, create, {
    key: KEY,
    json: s.mixpeek.sampleBody(create, { namespace_name: 'conformance_other' }),
  })
  for (const op of [
    'patch_namespace_v1_namespaces__namespace_identifier__patch',
    'update_namespace_v1_namespaces__namespace_identifier__put',
  ]) {
    await undocumented(409, 'namespace_name_taken', op, {
      key: KEY,
      path: { namespace_identifier: other.body.namespace_id },
      json: s.mixpeek.sampleBody(op, { namespace_name: s.ns.name }),
    })
  }
  await undocumented(
    409,
    'namespace_not_empty',
    'delete_namespace_v1_namespaces__namespace_identifier__delete',
    {
      key: KEY,
      path: { namespace_identifier: s.ns.id },
    },
  )
  const upload = 'generate_upload_url_v1_models_uploads_post'
  await undocumented(409, 'model_already_exists', upload, {
    key: KEY,
    json: s.mixpeek.sampleBody(upload, { name: 'sentiment_model', model_format: 'onnx' }),
  })
  await undocumented(413, 'archive_too_large', upload, {
    key: KEY,
    json: s.mixpeek.sampleBody(upload, { name: 'big_model', file_size_bytes: 2 * 1024 ** 3 }),
  })
  await undocumented(
    409,
    'model_already_exists',
    'enable_org_model_v1_namespaces__namespace_id__models_org__model_id__enable_post',
    {
      key: KEY,
      path: { namespace_id: s.ns.id, model_id: 'sentiment_model_1_0_0' },
      emptyJson: true,
    },
  )
  await undocumented(409, 'org_model_enabled', 'delete_model_v1_models__model_id__delete', {
    key: KEY,
    path: { model_id: 'sentiment_model_1_0_0' },
  })
  // A direct upload of a model_id the namespace has: a 409 Mixpeek's document lists.
  const taken = await s.expect(409, 'upload_model_v1_namespaces__namespace_id__models_post', {
    key: KEY,
    path: { namespace_id: s.ns.id },
    form: {
      file: await tarGzOf({ 'model.onnx': mlpModel(4, 8, 2, 1) }),
      fields: s.uploadForm({ name: 'mlp', version: '1.0.0', model_format: 'onnx' }),
    },
  })
  assert.equal(s.code(taken), 'model_already_exists')
}
