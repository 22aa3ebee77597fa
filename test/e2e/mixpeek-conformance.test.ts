import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { runAdminCommand } from '../helpers/admin.js'
import { MixpeekContract } from '../helpers/mixpeek-contract.js'
import { startTestApp } from '../helpers/test-app.js'
import {
  inferenceScenario,
  namespaceModelScenario,
  namespaceScenario,
} from './mixpeek/namespace-scenarios.js'
import { orgRegistryScenario, undocumentedRefusals } from './mixpeek/org-scenarios.js'
import { KEY, MixpeekSession } from './mixpeek/session.js'

// The proof that Mixpeek's own generated clients work against berth unchanged: every operation of
// Mixpeek's published OpenAPI (test/fixtures/mixpeek-openapi.json, the routes berth mirrors) is
// called as the document describes it (parameters by its names, bodies generated from its
// schemas), each request checked against Mixpeek's request schema before it is sent, each answer,
// success or refusal, against Mixpeek's response schema for its status.

describe("Mixpeek's OpenAPI (v0.81) against berth", () => {
  let s: MixpeekSession
  let rivalKey: string

  before(async () => {
    // Archives up to 1 GiB: Mixpeek's file_size_bytes goes to 5 GiB, so berth's 413 is reachable.
    const t = await startTestApp({ BERTH_MAX_ARCHIVE_BYTES: String(1024 ** 3) })
    s = new MixpeekSession(t, await MixpeekContract.load())
    await runAdminCommand(['org', 'create', 'rival', '--tier', 'enterprise'], t.config)
    rivalKey = String(
      (await runAdminCommand(['key', 'create', '--org', 'rival'], t.config)).api_key,
    )
  })
  after(() => s.t.close())

  it('namespaces: create, get, list, update (PUT and PATCH), delete, and their refusals', () =>
    namespaceScenario(s))
  it('namespace models: upload (multipart), list, get, deploy, and their refusals', () =>
    namespaceModelScenario(s))
  it('inference and its analytics, and their refusals', () => inferenceScenario(s))
  it('organization registry: presigned upload, confirm, list, get, enable, disable, delete', () =>
    orgRegistryScenario(s))
  it("refuses with statuses Mixpeek's document does not list (409, 413), in its ErrorResponse", () =>
    undocumentedRefusals(s))

  it("keeps organizations apart: the rival's key lists none of the first's namespaces or models", async () => {
    const namespaces = await s.expect(200, 'list_namespaces_v1_namespaces_list_post', {
      key: rivalKey,
      emptyJson: true,
    })
    assert.deepEqual(namespaces.body.results, [])
    assert.equal(namespaces.body.total_count, 0)
    const byId = await s.expect(200, 'list_namespaces_v1_namespaces_list_post', {
      key: rivalKey,
      json: s.mixpeek.sampleBody('list_namespaces_v1_namespaces_list_post', {
        filters: { namespace_id: s.ns.id },
        search: null,
      }),
    })
    assert.deepEqual(byId.body.results, [])
    const orgModels = await s.expect(200, 'list_models_v1_models_get', { key: rivalKey })
    assert.deepEqual(orgModels.body.models, [])
    assert.equal(orgModels.body.total, 0)
    for (const ref of [s.ns.id, s.ns.name]) {
      await s.expect(404, 'list_models_v1_namespaces__namespace_id__models_get', {
        key: rivalKey,
        path: { namespace_id: ref },
      })
      await s.expect(
        404,
        'list_available_org_models_v1_namespaces__namespace_id__models_available_get',
        {
          key: rivalKey,
          path: { namespace_id: ref },
        },
      )
    }
    await s.expect(404, 'get_inference_performance_v1_analytics_inference_performance_get', {
      key: rivalKey,
      namespace: s.ns.id,
    })
    // The rival's own namespace of the same name lists only the rival's (no) models.
    const own = await s.expect(200, 'create_namespace_v1_namespaces_post', {
      key: rivalKey,
      json: s.mixpeek.sampleBody('create_namespace_v1_namespaces_post', {
        namespace_name: s.ns.name,
      }),
    })
    const models = await s.expect(200, 'list_models_v1_namespaces__namespace_id__models_get', {
      key: rivalKey,
      path: { namespace_id: s.ns.name },
    })
    assert.equal(models.body.namespace_id, own.body.namespace_id)
    assert.deepEqual(models.body.models, [])
  })

  it('deletes namespace models, and refuses the unknown', async () => {
    const del = 'delete_model_v1_namespaces__namespace_id__models__model_id__delete'
    const path = { namespace_id: s.ns.id, model_id: 'mlp_1_0_0' }
    await s.expect(401, del, { path })
    await s.expect(200, del, { key: KEY, path })
    await s.expect(404, del, { key: KEY, path })
  })

  it("exercised every operation of Mixpeek's document, each with a success and a refusal", () => {
    const operations = s.mixpeek.operationIds
    assert.equal(operations.length, 21)
    const answered = (id: string) => [...(s.mixpeek.exercised.get(id) ?? [])]
    assert.deepEqual(
      operations.filter((id) => !answered(id).some((status) => status === 200)),
      [],
      'operations never answered 200',
    )
    assert.deepEqual(
      operations.filter((id) => !answered(id).some((status) => status >= 400 && status < 500)),
      [],
      'operations never refused',
    )
  })
})
