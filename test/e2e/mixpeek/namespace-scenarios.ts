import assert from 'node:assert/strict'
import { mlpModel, tokenEncoderModel } from '../../fixtures/onnx-models.js'
import { tarGzOf } from '../../fixtures/tar-builder.js'
import { DIMS, SENTENCE_TRANSFORMERS, textModelFiles } from '../../fixtures/text-models.js'
import { tinyVocab } from '../../fixtures/tokenizers.js'
import { KEY, type MixpeekSession, UNKNOWN_NAMESPACE } from './session.js'

// Mixpeek's namespace operations, namespace models and inference, called as its document
// describes them (test/e2e/mixpeek-conformance.test.ts runs them in order).

/**
 * Namespaces: create (which sets `s.ns`), get, list, update (PUT and PATCH), delete, and their
 * refusals.
 */
export async function namespaceScenario(s: MixpeekSession): Promise<void> {
  const create = 'create_namespace_v1_namespaces_post'
  const created = await s.expect(200, create, {
    key: KEY,
    json: s.mixpeek.sampleBody(create, { namespace_name: 'conformance_main' }),
  })
  s.ns = { id: created.body.namespace_id, name: created.body.namespace_name }
  assert.equal(s.ns.name, 'conformance_main')
  // The document's own example body, unchanged.
  const example = await s.expect(200, create, { key: KEY, json: s.mixpeek.sampleBody(create) })
  assert.equal(example.body.namespace_name, 'spotify_playlists_dev')
  await s.expect(401, create, { json: s.mixpeek.sampleBody(create, { namespace_name: 'nokey' }) })
  await s.expect(422, create, {
    key: KEY,
    json: s.mixpeek.sampleBody(create, { namespace_name: 42 }),
    malformed: true,
  })

  const get = 'get_namespace_v1_namespaces__namespace_identifier__get'
  for (const ref of [s.ns.id, s.ns.name]) {
    const got = await s.expect(200, get, { key: KEY, path: { namespace_identifier: ref } })
    assert.equal(got.body.namespace_id, s.ns.id)
  }
  assert.equal(
    s.code(
      await s.expect(404, get, { key: KEY, path: { namespace_identifier: UNKNOWN_NAMESPACE } }),
    ),
    'namespace_not_found',
  )
  await s.expect(401, get, { path: { namespace_identifier: s.ns.id } })

  const list = 'list_namespaces_v1_namespaces_list_post'
  const filtered = await s.expect(200, list, {
    key: KEY,
    query: { limit: 10, offset: 0, include_total: true },
    json: s.mixpeek.sampleBody(list, {
      filters: { namespace_name: 'conformance_main' },
      sort: { field: 'namespace_name', direction: 'asc' },
      search: 'conformance',
    }),
  })
  assert.deepEqual(
    filtered.body.results.map((n: { namespace_id: string }) => n.namespace_id),
    [s.ns.id],
  )
  // The document's example body (a filter on an id that is not there) and an empty body.
  assert.equal(
    (await s.expect(200, list, { key: KEY, json: s.mixpeek.sampleBody(list) })).body.total_count,
    0,
  )
  const all = await s.expect(200, list, { key: KEY, emptyJson: true })
  assert.equal(all.body.total_count, 2)
  const paged = await s.expect(200, list, { key: KEY, query: { limit: 1 }, emptyJson: true })
  assert.equal(paged.body.results.length, 1)
  const next = await s.expect(200, list, {
    key: KEY,
    query: { limit: 1, cursor: paged.body.pagination.next_cursor },
    emptyJson: true,
  })
  assert.notEqual(next.body.results[0].namespace_id, paged.body.results[0].namespace_id)
  await s.expect(401, list, { emptyJson: true })
  await s.expect(422, list, {
    key: KEY,
    json: s.mixpeek.sampleBody(list, { case_sensitive: 'yes' }),
    malformed: true,
  })

  const patch = 'patch_namespace_v1_namespaces__namespace_identifier__patch'
  const patched = await s.expect(200, patch, {
    key: KEY,
    path: { namespace_identifier: s.ns.id },
    json: s.mixpeek.sampleBody(patch, { namespace_name: 'conformance_renamed' }),
  })
  assert.equal(patched.body.namespace_name, 'conformance_renamed')
  await s.expect(404, patch, {
    key: KEY,
    path: { namespace_identifier: UNKNOWN_NAMESPACE },
    json: s.mixpeek.sampleBody(patch),
  })
  await s.expect(401, patch, {
    path: { namespace_identifier: s.ns.id },
    json: s.mixpeek.sampleBody(patch),
  })
  await s.expect(422, patch, {
    key: KEY,
    path: { namespace_identifier: s.ns.id },
    json: { namespace_name: 7 },
    malformed: true,
  })

  const put = 'update_namespace_v1_namespaces__namespace_identifier__put'
  const renamed = await s.expect(200, put, {
    key: KEY,
    path: { namespace_identifier: 'conformance_renamed' },
    json: s.mixpeek.sampleBody(put, { namespace_name: s.ns.name }),
  })
  assert.equal(renamed.body.namespace_name, s.ns.name)
  await s.expect(404, put, {
    key: KEY,
    path: { namespace_identifier: UNKNOWN_NAMESPACE },
    json: s.mixpeek.sampleBody(put),
  })
  await s.expect(401, put, {
    path: { namespace_identifier: s.ns.id },
    json: s.mixpeek.sampleBody(put),
  })
  await s.expect(422, put, {
    key: KEY,
    path: { namespace_identifier: s.ns.id },
    json: { payload_indexes: 'all' },
    malformed: true,
  })

  const del = 'delete_namespace_v1_namespaces__namespace_identifier__delete'
  await s.expect(401, del, { path: { namespace_identifier: 'spotify_playlists_dev' } })
  await s.expect(200, del, { key: KEY, path: { namespace_identifier: 'spotify_playlists_dev' } })
  await s.expect(404, del, { key: KEY, path: { namespace_identifier: 'spotify_playlists_dev' } })
}

/** Namespace models: upload (multipart), list, get, deploy, and their refusals. */
export async function namespaceModelScenario(s: MixpeekSession): Promise<void> {
  const upload = 'upload_model_v1_namespaces__namespace_id__models_post'
  const mlp = { file: await tarGzOf({ 'model.onnx': mlpModel(4, 8, 2, 1) }) }
  const uploaded = await s.expect(200, upload, {
    key: KEY,
    path: { namespace_id: s.ns.id },
    form: {
      ...mlp,
      fields: s.uploadForm({
        name: 'mlp',
        version: '1.0.0',
        model_format: 'onnx',
        framework: 'onnx',
        task_type: null,
      }),
    },
  })
  assert.equal(uploaded.body.model_id, 'mlp_1_0_0')
  const vocab = tinyVocab()
  const embedder = await tarGzOf(
    textModelFiles(vocab, tokenEncoderModel(vocab.length, DIMS), {}, SENTENCE_TRANSFORMERS),
  )
  await s.expect(200, upload, {
    key: KEY,
    path: { namespace_id: s.ns.name },
    form: {
      file: embedder,
      fields: s.uploadForm({
        name: 'embedder',
        version: '1.0.0',
        model_format: 'huggingface',
        framework: 'sentence-transformers',
        task_type: 'embedding',
      }),
    },
  })
  const fields = s.uploadForm({ name: 'mlp', version: '2.0.0', model_format: 'onnx' })
  await s.expect(401, upload, { path: { namespace_id: s.ns.id }, form: { ...mlp, fields } })
  await s.expect(404, upload, {
    key: KEY,
    path: { namespace_id: UNKNOWN_NAMESPACE },
    form: { ...mlp, fields },
  })
  await s.expect(422, upload, {
    key: KEY,
    path: { namespace_id: s.ns.id },
    form: { ...mlp, fields: { ...fields, name: undefined } },
    malformed: true,
  })
  await s.expect(422, upload, {
    key: KEY,
    path: { namespace_id: s.ns.id },
    form: { ...mlp, fields: { ...fields, model_format: 'tflite' } },
    malformed: true,
  })

  for (const modelId of ['mlp_1_0_0', 'embedder_1_0_0']) {
    assert.equal((await s.settled(modelId)).deployed, true, modelId)
  }
  const get = 'get_model_v1_namespaces__namespace_id__models__model_id__get'
  const detail = await s.expect(200, get, {
    key: KEY,
    path: { namespace_id: s.ns.name, model_id: 'mlp_1_0_0' },
  })
  assert.equal(detail.body.model.namespace_id, s.ns.id)
  await s.expect(404, get, { key: KEY, path: { namespace_id: s.ns.id, model_id: 'nothing_1_0_0' } })
  await s.expect(401, get, { path: { namespace_id: s.ns.id, model_id: 'mlp_1_0_0' } })

  const list = 'list_models_v1_namespaces__namespace_id__models_get'
  const listed = await s.expect(200, list, { key: KEY, path: { namespace_id: s.ns.id } })
  assert.deepEqual(listed.body.models.map((m: { model_id: string }) => m.model_id).sort(), [
    'embedder_1_0_0',
    'mlp_1_0_0',
  ])
  await s.expect(404, list, { key: KEY, path: { namespace_id: UNKNOWN_NAMESPACE } })
  await s.expect(401, list, { path: { namespace_id: s.ns.id } })

  const deploy = 'deploy_model_v1_namespaces__namespace_id__models__model_id__deploy_post'
  const deployed = await s.expect(200, deploy, {
    key: KEY,
    path: { namespace_id: s.ns.id, model_id: 'mlp_1_0_0' },
  })
  assert.equal(deployed.body.deployment_status, 'deployed')
  assert.equal(deployed.body.cached, true)
  await s.expect(404, deploy, {
    key: KEY,
    path: { namespace_id: s.ns.id, model_id: 'nothing_1_0_0' },
  })
  await s.expect(401, deploy, { path: { namespace_id: s.ns.id, model_id: 'mlp_1_0_0' } })
}

/** Inference (texts and tensors) and its analytics, and their refusals. */
export async function inferenceScenario(s: MixpeekSession): Promise<void> {
  const infer = 'execute_raw_inference_v1_inference_post'
  // The document's example names an external provider and model; berth runs its own models.
  const own = { provider: null, model: null, feature_uri: null, parameters: {} }
  const embedded = await s.expect(200, infer, {
    key: KEY,
    namespace: s.ns.id,
    json: s.mixpeek.sampleBody(infer, {
      ...own,
      inference_name: 'embedder_1_0_0',
      inputs: { text: 'machine learning' },
    }),
  })
  assert.equal(embedded.body.data.length, DIMS)
  const byUri = await s.expect(200, infer, {
    key: KEY,
    namespace: s.ns.name,
    json: s.mixpeek.sampleBody(infer, {
      ...own,
      inference_name: null,
      feature_uri: 'mixpeek://embedder@1.0.0/embedding',
      inputs: { texts: ['machine learning', 'berth'] },
    }),
  })
  assert.deepEqual(byUri.body.data[0], embedded.body.data)
  const tensors = await s.expect(200, infer, {
    key: KEY,
    namespace: s.ns.id,
    json: s.mixpeek.sampleBody(infer, {
      ...own,
      inference_name: 'mlp_1_0_0',
      inputs: { x: { shape: [1, 4], datatype: 'FP32', data: [0.5, -1, 2, 0.25] } },
    }),
  })
  assert.deepEqual(tensors.body.data.y.shape, [1, 2])
  const noNamespace = await s.expect(400, infer, {
    key: KEY,
    json: s.mixpeek.sampleBody(infer, { ...own, inference_name: 'embedder_1_0_0' }),
  })
  assert.equal(s.code(noNamespace), 'namespace_header_missing')
  const external = await s.expect(400, infer, {
    key: KEY,
    namespace: s.ns.id,
    json: s.mixpeek.sampleBody(infer, { inference_name: null, feature_uri: null }),
  })
  assert.equal(s.code(external), 'provider_not_supported')
  await s.expect(404, infer, {
    key: KEY,
    namespace: s.ns.id,
    json: s.mixpeek.sampleBody(infer, { ...own, inference_name: 'nothing_1_0_0' }),
  })
  await s.expect(401, infer, {
    key: 'sk_not_a_key_of_this_server_0123456789',
    namespace: s.ns.id,
    json: s.mixpeek.sampleBody(infer, { ...own, inference_name: 'embedder_1_0_0' }),
  })
  await s.expect(401, infer, {
    namespace: s.ns.id,
    json: s.mixpeek.sampleBody(infer, { ...own, inference_name: 'embedder_1_0_0' }),
  })
  await s.expect(422, infer, {
    key: KEY,
    namespace: s.ns.id,
    json: s.mixpeek.sampleBody(infer, { ...own, inference_name: 'embedder_1_0_0', inputs: 'text' }),
    malformed: true,
  })

  const performance = 'get_inference_performance_v1_analytics_inference_performance_get'
  const report = await s.expect(200, performance, {
    key: KEY,
    namespace: s.ns.id,
    query: { hours: 24, model_name: 'embedder' },
  })
  assert.equal(report.body.length, 1)
  assert.equal(report.body[0].model_id, 'embedder_1_0_0')
  await s.expect(200, performance, { key: KEY, namespace: s.ns.name })
  await s.expect(404, performance, { key: KEY, namespace: UNKNOWN_NAMESPACE })
  await s.expect(401, performance, { namespace: s.ns.id })
}
