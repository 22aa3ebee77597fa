import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { hashApiKey } from '../../src/domain/api-key.js'
import type { Deployment } from '../../src/domain/deployment-state.js'
import { newId } from '../../src/domain/ids.js'
import type { Namespace } from '../../src/domain/namespace.js'
import type { OrgModel } from '../../src/domain/org-model.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import type { MetadataStore } from '../../src/metadata/metadata-store.js'
import { apiKey, organization } from '../fixtures/account-records.js'
import { modelRecord } from '../fixtures/model-records.js'
import { inferenceRecordsContract } from './inference-records.contract.js'

const T0 = '2026-01-01T00:00:00.000Z'
const T1 = '2026-01-02T00:00:00.000Z'
const T2 = '2026-01-03T00:00:00.000Z'

function namespace(organizationId: string, overrides: Partial<Namespace> = {}): Namespace {
  const id = newId('ns')
  return {
    id,
    organizationId,
    name: `ns-${id.slice(3, 11)}`,
    description: null,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  }
}

const model = modelRecord

/**
 * The behaviour every MetadataStore adapter must have. `create` returns a fresh, empty store
 * (each suite gets its own, so bootstrap can be tested on emptiness).
 */
export function metadataStoreContract(adapter: string, create: () => Promise<MetadataStore>): void {
  describe(`MetadataStore contract: ${adapter}`, () => {
    let store: MetadataStore
    before(async () => {
      store = await create()
    })
    after(() => store.close())
    inferenceRecordsContract(() => store)

    describe('bootstrap', () => {
      it('creates the first organization and its key only on an empty store', async () => {
        const first = organization({ name: 'default', tier: 'enterprise' })
        const key = apiKey(first.id)
        assert.equal(await store.bootstrapOrganization(first, key), true)
        assert.deepEqual(await store.findOrganization({ name: 'default' }), first)
        assert.deepEqual((await store.findCredential(key.hash))?.key, key)

        const second = organization({ name: 'other-default' })
        const secondKey = apiKey(second.id)
        assert.equal(await store.bootstrapOrganization(second, secondKey), false)
        assert.equal(await store.findOrganization({ id: second.id }), undefined)
        assert.equal(await store.findCredential(secondKey.hash), undefined)
      })
    })

    describe('organizations', () => {
      it('finds an organization by id and by name', async () => {
        const org = organization({ tier: 'team' })
        await store.createOrganization(org)
        assert.deepEqual(await store.findOrganization({ id: org.id }), org)
        assert.deepEqual(await store.findOrganization({ name: org.name }), org)
        assert.equal(await store.findOrganization({ id: newId('org') }), undefined)
        assert.equal(await store.findOrganization({ name: 'no-such-org' }), undefined)
      })

      it('refuses a second organization with the same name', async () => {
        const org = organization()
        await store.createOrganization(org)
        await assert.rejects(store.createOrganization(organization({ name: org.name })), (err) =>
          isBerthError(err, 'organization_name_taken'),
        )
      })

      it('changes the tier and the update time, idempotently', async () => {
        const org = organization()
        await store.createOrganization(org)
        const updated = await store.setOrganizationTier(org.id, 'enterprise', T1)
        assert.deepEqual(updated, { ...org, tier: 'enterprise', updatedAt: T1 })
        assert.deepEqual(await store.setOrganizationTier(org.id, 'enterprise', T1), updated)
        assert.deepEqual(await store.findOrganization({ id: org.id }), updated)
      })

      it('lists every organization by name', async () => {
        const zed = organization({ name: `zed-${newId('org')}` })
        const abe = organization({ name: `abe-${newId('org')}` })
        await store.createOrganization(zed)
        await store.createOrganization(abe)
        const listed = (await store.listOrganizations()).filter(
          (o) => o.id === zed.id || o.id === abe.id,
        )
        assert.deepEqual(listed, [abe, zed])
        const names = (await store.listOrganizations()).map((o) => o.name)
        assert.deepEqual(names, [...names].sort())
      })

      it('refuses to change the tier of an unknown organization', async () => {
        await assert.rejects(store.setOrganizationTier(newId('org'), 'pro', T1), (err) =>
          isBerthError(err, 'organization_not_found'),
        )
      })
    })

    describe('API keys', () => {
      it('finds a key by its hash, with its label and its organization as it is now', async () => {
        const org = organization()
        await store.createOrganization(org)
        const key = apiKey(org.id, { label: 'ci' })
        await store.createApiKey(key)
        assert.deepEqual(await store.findCredential(key.hash), { key, organization: org })
        assert.equal(await store.findCredential(hashApiKey('sk_unknown')), undefined)
        const upgraded = await store.setOrganizationTier(org.id, 'enterprise', T1)
        assert.deepEqual((await store.findCredential(key.hash))?.organization, upgraded)
      })

      it('refuses a key for an unknown organization', async () => {
        await assert.rejects(store.createApiKey(apiKey(newId('org'))), (err) =>
          isBerthError(err, 'organization_not_found'),
        )
      })

      it('revokes a key once and keeps the first revocation time', async () => {
        const org = organization()
        await store.createOrganization(org)
        const key = apiKey(org.id)
        await store.createApiKey(key)
        const revoked = await store.revokeApiKey(key.id, T1)
        assert.equal(revoked.revokedAt, T1)
        const again = await store.revokeApiKey(key.id, '2027-01-01T00:00:00.000Z')
        assert.equal(again.revokedAt, T1)
        assert.equal((await store.findCredential(key.hash))?.key.revokedAt, T1)
      })

      it("lists an organization's keys, revoked ones too, oldest first, and none of another's", async () => {
        const org = organization()
        const other = organization()
        await store.createOrganization(org)
        await store.createOrganization(other)
        const late = apiKey(org.id, { label: 'late', createdAt: T1 })
        const early = apiKey(org.id, { createdAt: T0 })
        await store.createApiKey(late)
        await store.createApiKey(early)
        await store.createApiKey(apiKey(other.id))
        await store.revokeApiKey(early.id, T1)
        assert.deepEqual(await store.listApiKeys(org.id), [{ ...early, revokedAt: T1 }, late])
        assert.deepEqual(await store.listApiKeys(newId('org')), [])
      })

      it('refuses to revoke an unknown key', async () => {
        await assert.rejects(store.revokeApiKey(newId('key'), T1), (err) =>
          isBerthError(err, 'api_key_not_found'),
        )
      })
    })

    describe('namespaces', () => {
      it('creates, finds by id and name, lists oldest first, and deletes', async () => {
        const org = organization()
        await store.createOrganization(org)
        const a = namespace(org.id, { name: 'alpha', description: 'first', createdAt: T0 })
        const b = namespace(org.id, { name: 'beta', createdAt: T1, updatedAt: T1 })
        await store.createNamespace(b)
        await store.createNamespace(a)
        assert.deepEqual(await store.findNamespace(org.id, { id: a.id }), a)
        assert.deepEqual(await store.findNamespace(org.id, { name: 'beta' }), b)
        assert.deepEqual(await store.listNamespaces(org.id), [a, b])

        assert.equal(await store.deleteNamespace(org.id, a.id), true)
        assert.equal(await store.deleteNamespace(org.id, a.id), false)
        assert.equal(await store.findNamespace(org.id, { id: a.id }), undefined)
        assert.deepEqual(await store.listNamespaces(org.id), [b])
      })

      it('refuses a duplicate name in one organization but allows it in another', async () => {
        const one = organization()
        const two = organization()
        await store.createOrganization(one)
        await store.createOrganization(two)
        await store.createNamespace(namespace(one.id, { name: 'shared' }))
        await assert.rejects(store.createNamespace(namespace(one.id, { name: 'shared' })), (err) =>
          isBerthError(err, 'namespace_name_taken'),
        )
        await store.createNamespace(namespace(two.id, { name: 'shared' }))
      })

      it("never shows or deletes another organization's namespace", async () => {
        const owner = organization()
        const stranger = organization()
        await store.createOrganization(owner)
        await store.createOrganization(stranger)
        const ns = namespace(owner.id, { name: 'private' })
        await store.createNamespace(ns)

        assert.equal(await store.findNamespace(stranger.id, { id: ns.id }), undefined)
        assert.equal(await store.findNamespace(stranger.id, { name: 'private' }), undefined)
        assert.deepEqual(await store.listNamespaces(stranger.id), [])
        assert.equal(await store.deleteNamespace(stranger.id, ns.id), false)
        assert.deepEqual(await store.findNamespace(owner.id, { id: ns.id }), ns)
      })

      it("lists every organization's namespaces for the operator, oldest first", async () => {
        const one = organization()
        const two = organization()
        await store.createOrganization(one)
        await store.createOrganization(two)
        const later = namespace(one.id, { name: 'same', createdAt: T1, updatedAt: T1 })
        const earlier = namespace(two.id, { name: 'same', createdAt: T0 })
        await store.createNamespace(later)
        await store.createNamespace(earlier)
        const ours = (await store.listAllNamespaces()).filter((n) =>
          [one.id, two.id].includes(n.organizationId),
        )
        assert.deepEqual(ours, [earlier, later])
        await store.deleteNamespace(one.id, later.id)
        assert.ok(!(await store.listAllNamespaces()).some((n) => n.id === later.id))
      })

      it("renames and redescribes a namespace, refusing a taken name and another org's", async () => {
        const org = organization()
        const other = organization()
        await store.createOrganization(org)
        await store.createOrganization(other)
        const a = namespace(org.id, { name: 'alpha', description: 'first', createdAt: T0 })
        await store.createNamespace(a)
        await store.createNamespace(namespace(org.id, { name: 'beta' }))

        const renamed = await store.updateNamespace(org.id, a.id, { name: 'gamma', updatedAt: T1 })
        assert.deepEqual(renamed, { ...a, name: 'gamma', updatedAt: T1 })
        assert.deepEqual(await store.findNamespace(org.id, { name: 'gamma' }), renamed)
        assert.equal(await store.findNamespace(org.id, { name: 'alpha' }), undefined)
        const cleared = await store.updateNamespace(org.id, a.id, {
          description: null,
          updatedAt: T2,
        })
        assert.deepEqual(cleared, { ...a, name: 'gamma', description: null, updatedAt: T2 })

        await assert.rejects(
          store.updateNamespace(org.id, a.id, { name: 'beta', updatedAt: T2 }),
          (err) => isBerthError(err, 'namespace_name_taken'),
        )
        assert.equal(
          await store.updateNamespace(other.id, a.id, { name: 'stolen', updatedAt: T2 }),
          undefined,
        )
        assert.equal(
          await store.updateNamespace(org.id, newId('ns'), { name: 'ghost', updatedAt: T2 }),
          undefined,
        )
        assert.deepEqual(await store.findNamespace(org.id, { id: a.id }), cleared)
      })

      it('refuses a namespace for an unknown organization', async () => {
        await assert.rejects(store.createNamespace(namespace(newId('org'))), (err) =>
          isBerthError(err, 'organization_not_found'),
        )
      })
    })

    describe('models', () => {
      async function freshNamespace(): Promise<Namespace> {
        const org = organization()
        await store.createOrganization(org)
        const ns = namespace(org.id)
        await store.createNamespace(ns)
        return ns
      }

      it('creates, finds, lists oldest first and deletes models, keeping every field', async () => {
        const ns = await freshNamespace()
        const a = model(ns, { name: 'alpha', createdAt: T0 })
        const b = model(ns, { name: 'beta', version: '2.10.3', createdAt: T1, framework: 'torch' })
        await store.createModel(b)
        await store.createModel(a)
        assert.equal(b.modelId, 'beta_2_10_3')
        assert.deepEqual(await store.findModel(ns.id, b.modelId), b)
        assert.deepEqual(await store.listModels(ns.id), [a, b])
        assert.equal(await store.deleteModel(ns.id, a.modelId), true)
        assert.equal(await store.deleteModel(ns.id, a.modelId), false)
        assert.equal(await store.findModel(ns.id, a.modelId), undefined)
        assert.deepEqual(await store.listModels(ns.id), [b])
      })

      it('refuses a second model with the same id in a namespace, not in another', async () => {
        const ns = await freshNamespace()
        const other = await freshNamespace()
        await store.createModel(model(ns, { name: 'dup' }))
        await assert.rejects(store.createModel(model(ns, { name: 'dup' })), (err) =>
          isBerthError(err, 'model_already_exists'),
        )
        await store.createModel(model(other, { name: 'dup' }))
      })

      /** Both halves of a deployment record: what is wanted, and where it is. */
      const record = async (namespaceId: string, modelId: string, deployment: Deployment) => {
        const { desired, ...observed } = deployment
        const a = await store.setDesiredState(namespaceId, modelId, desired)
        const b = await store.setDeploymentStatus(namespaceId, modelId, observed)
        return a && b
      }

      it('keeps what is wanted apart from where it is: one never overwrites the other', async () => {
        const ns = await freshNamespace()
        const m = model(ns, { name: 'halves' })
        await store.createModel(m)
        // An instance reports its state with a stale view while a user undeploys elsewhere.
        assert.equal(await store.setDesiredState(ns.id, m.modelId, 'deployed'), true)
        await Promise.all([
          store.setDesiredState(ns.id, m.modelId, 'not_deployed'),
          store.setDeploymentStatus(ns.id, m.modelId, {
            status: { state: 'deployed', reason: 'ready', since: T1 },
            message: null,
            deployedAt: T1,
          }),
        ])
        const stored = (await store.findModel(ns.id, m.modelId))?.deployment
        assert.equal(stored?.desired, 'not_deployed')
        assert.deepEqual(stored?.status, { state: 'deployed', reason: 'ready', since: T1 })
        assert.equal(stored?.deployedAt, T1)
      })

      it('records deployments and lists what a starting server must reconcile', async () => {
        const ns = await freshNamespace()
        const idle = model(ns, { name: 'idle' })
        const wanted = model(ns, { name: 'wanted', createdAt: T1 })
        const stuck = model(ns, { name: 'stuck', createdAt: T1 })
        const broken = model(ns, { name: 'broken' })
        for (const m of [idle, wanted, stuck, broken]) await store.createModel(m)
        const deployed: Deployment = {
          desired: 'deployed',
          status: { state: 'deployed', reason: 'ready', since: T1 },
          message: null,
          deployedAt: T1,
        }
        assert.equal(await record(ns.id, wanted.modelId, deployed), true)
        const unloading: Deployment = {
          desired: 'not_deployed',
          status: { state: 'unloading', reason: 'unload_requested', since: T1 },
          message: null,
          deployedAt: T0,
        }
        await record(ns.id, stuck.modelId, unloading)
        const failed: Deployment = {
          desired: 'not_deployed',
          status: { state: 'failed', reason: 'model_load_failed', since: T1 },
          message: 'ONNX Runtime said no',
          deployedAt: null,
        }
        await record(ns.id, broken.modelId, failed)
        assert.deepEqual((await store.findModel(ns.id, wanted.modelId))?.deployment, deployed)
        assert.deepEqual((await store.findModel(ns.id, broken.modelId))?.deployment, failed)
        assert.deepEqual((await store.findModel(ns.id, idle.modelId))?.deployment, idle.deployment)
        const toReconcile = (await store.listModelsToReconcile()).filter(
          (m) => m.namespaceId === ns.id,
        )
        assert.deepEqual(
          toReconcile.map((m) => m.modelId),
          [stuck.modelId, wanted.modelId].sort(),
        )
        // Two redeploys asked of `wanted` (through any instance): generation 2.
        assert.equal(await store.bumpDeployGeneration(ns.id, wanted.modelId), 1)
        assert.equal(await store.bumpDeployGeneration(ns.id, wanted.modelId), 2)
        assert.equal(await store.bumpDeployGeneration(ns.id, 'gone_1_0_0'), undefined)
        const desired = (await store.listDesiredStates()).filter((d) => d.namespaceId === ns.id)
        assert.deepEqual(
          desired.sort((a, b) => a.modelId.localeCompare(b.modelId)),
          [
            {
              namespaceId: ns.id,
              modelId: broken.modelId,
              uploadId: broken.uploadId,
              desired: 'not_deployed',
              generation: 0,
            },
            {
              namespaceId: ns.id,
              modelId: idle.modelId,
              uploadId: idle.uploadId,
              desired: 'not_deployed',
              generation: 0,
            },
            {
              namespaceId: ns.id,
              modelId: stuck.modelId,
              uploadId: stuck.uploadId,
              desired: 'not_deployed',
              generation: 0,
            },
            {
              namespaceId: ns.id,
              modelId: wanted.modelId,
              uploadId: wanted.uploadId,
              desired: 'deployed',
              generation: 2,
            },
          ].sort((a, b) => a.modelId.localeCompare(b.modelId)),
        )
        assert.equal(await record(ns.id, 'gone_1_0_0', deployed), false)
        assert.equal(await store.setDesiredState(ns.id, 'gone_1_0_0', 'deployed'), false)
      })

      it('records serving settings, automatic batch size included', async () => {
        const ns = await freshNamespace()
        const m = model(ns, {
          serving: {
            maxBatchSize: null,
            maxQueueDelayUs: 0,
            replicas: 1,
            loadPolicy: 'eager',
            idleTimeoutS: null,
            nodeSelector: {},
          },
        })
        await store.createModel(m)
        assert.deepEqual((await store.findModel(ns.id, m.modelId))?.serving, m.serving)
        const changed = {
          maxBatchSize: 64,
          maxQueueDelayUs: 500,
          replicas: 3,
          loadPolicy: 'on_demand' as const,
          idleTimeoutS: 30,
          nodeSelector: { gpu: 'a100', 'zone.name': 'eu-1' },
        }
        assert.equal(await store.setServing(ns.id, m.modelId, changed), true)
        assert.deepEqual((await store.findModel(ns.id, m.modelId))?.serving, changed)
        assert.equal(await store.setServing(ns.id, 'gone_1_0_0', changed), false)
      })

      it('refuses a model in a missing namespace', async () => {
        const ns = namespace(newId('org'))
        await assert.rejects(store.createModel(model(ns)), (err) =>
          isBerthError(err, 'namespace_not_found'),
        )
      })

      it('refuses to delete a namespace that holds models', async () => {
        const ns = await freshNamespace()
        const m = model(ns)
        await store.createModel(m)
        await assert.rejects(store.deleteNamespace(ns.organizationId, ns.id), (err) =>
          isBerthError(err, 'namespace_not_empty'),
        )
        assert.deepEqual(await store.findNamespace(ns.organizationId, { id: ns.id }), ns)
        await store.deleteModel(ns.id, m.modelId)
        assert.equal(await store.deleteNamespace(ns.organizationId, ns.id), true)
      })
    })

    describe('concurrency', () => {
      it('lets exactly one of many concurrent creations of a name win', async () => {
        const org = organization()
        await store.createOrganization(org)
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, () =>
            store.createNamespace(namespace(org.id, { name: 'race' })),
          ),
        )
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
        for (const r of results) {
          if (r.status === 'rejected') assert.ok(isBerthError(r.reason, 'namespace_name_taken'))
        }
      })
    })

    describe('org models', () => {
      function orgModel(organizationId: string, overrides: Partial<OrgModel> = {}): OrgModel {
        const uploadId = newId('upl')
        const name = overrides.name ?? `org-model-${uploadId.slice(4, 10)}`
        return {
          organizationId,
          modelId: `${name}_1_0_0`,
          uploadId,
          name,
          version: '1.0.0',
          description: 'shared encoder',
          format: 'onnx',
          framework: null,
          taskType: 'embedding',
          resources: { numCpus: 0.5, numGpus: 0, memoryBytes: 5 * 1024 ** 3 },
          archive: {
            key: `org/${uploadId}.tar.gz`,
            url: `s3://b/org/${uploadId}.tar.gz`,
            sha256: null,
            sizeBytes: null,
          },
          validationStatus: 'pending',
          validationErrors: [],
          manifest: null,
          uploadExpiresAt: T1,
          createdAt: T0,
          updatedAt: T0,
          ...overrides,
        }
      }

      it('creates, finds by model_id or upload_id, lists and records validation', async () => {
        const org = organization()
        await store.createOrganization(org)
        const first = orgModel(org.id, { name: 'first' })
        const second = orgModel(org.id, { name: 'second', createdAt: T1 })
        await store.createOrgModel(second)
        await store.createOrgModel(first)
        assert.deepEqual(await store.findOrgModel(org.id, 'first_1_0_0'), first)
        assert.deepEqual(await store.findOrgModel(org.id, 'second_1_0_0'), second)
        assert.deepEqual(await store.findOrgModelByUpload(second.uploadId), second)
        assert.equal(await store.findOrgModelByUpload(newId('upl')), undefined)
        assert.equal(await store.findOrgModel(newId('org'), 'first_1_0_0'), undefined)
        assert.deepEqual(
          (await store.listOrgModels(org.id)).map((m) => m.modelId),
          ['first_1_0_0', 'second_1_0_0'],
        )
        await assert.rejects(store.createOrgModel(orgModel(org.id, { name: 'first' })), (err) =>
          isBerthError(err, 'model_already_exists'),
        )
        const other = organization()
        await store.createOrganization(other)
        await store.createOrgModel(orgModel(other.id, { name: 'first' }))

        const manifest = modelRecord({ id: 'ns_x', organizationId: org.id }).manifest
        const validation = {
          validationStatus: 'passed' as const,
          validationErrors: [],
          manifest,
          sha256: 'ef'.repeat(32),
          sizeBytes: 6 * 1024 ** 3,
          updatedAt: T1,
        }
        assert.equal(await store.setOrgModelValidation(first.uploadId, validation), true)
        const passed = await store.findOrgModelByUpload(first.uploadId)
        assert.equal(passed?.validationStatus, 'passed')
        assert.deepEqual(passed?.manifest, manifest)
        assert.deepEqual(passed?.archive, {
          ...first.archive,
          sha256: 'ef'.repeat(32),
          sizeBytes: 6 * 1024 ** 3,
        })
        assert.equal(passed?.updatedAt, T1)
        const failed = {
          ...validation,
          validationStatus: 'failed' as const,
          validationErrors: ['onnx_invalid: not a graph'],
          manifest: null,
        }
        await store.setOrgModelValidation(second.uploadId, failed)
        assert.deepEqual((await store.findOrgModelByUpload(second.uploadId))?.validationErrors, [
          'onnx_invalid: not a graph',
        ])
        assert.equal(await store.setOrgModelValidation(newId('upl'), validation), false)
      })

      it('lists every archive key a model or an org model holds, and no other', async () => {
        const org = organization()
        await store.createOrganization(org)
        const ns = namespace(org.id)
        await store.createNamespace(ns)
        const pending = orgModel(org.id)
        await store.createOrgModel(pending)
        const direct = model(ns, { name: 'direct' })
        await store.createModel(direct)
        const gone = model(ns, { name: 'gone' })
        await store.createModel(gone)
        await store.deleteModel(ns.id, gone.modelId)
        const keys = await store.listArchiveKeys()
        assert.ok(keys.has(pending.archive.key), 'a presigned upload not yet arrived')
        assert.ok(keys.has(direct.archive.key))
        assert.ok(!keys.has(gone.archive.key), 'a deleted model holds nothing')
      })

      it('refuses to delete an org model while a namespace enables it', async () => {
        const org = organization()
        await store.createOrganization(org)
        const shared = orgModel(org.id)
        await store.createOrgModel(shared)
        const ns = namespace(org.id)
        await store.createNamespace(ns)
        const enabled = model(ns, { name: shared.name, orgUploadId: shared.uploadId })
        await store.createModel(enabled)
        assert.equal((await store.findModel(ns.id, enabled.modelId))?.orgUploadId, shared.uploadId)
        assert.equal(await store.deleteOrgModel(shared.uploadId), 'enabled')
        assert.ok(await store.findOrgModelByUpload(shared.uploadId))
        await store.deleteModel(ns.id, enabled.modelId)
        assert.equal(await store.deleteOrgModel(shared.uploadId), 'deleted')
        assert.equal(await store.deleteOrgModel(shared.uploadId), 'missing')
        // Enabling what no longer exists fails in the store, whatever raced it.
        await assert.rejects(
          store.createModel(model(ns, { orgUploadId: shared.uploadId })),
          (err) => isBerthError(err, 'org_model_not_found'),
        )
      })
    })
  })
}

/** Runs after the suite's own `after`: a closed store refuses work, and closing is idempotent. */
export function closedStoreContract(adapter: string, create: () => Promise<MetadataStore>): void {
  describe(`MetadataStore contract: ${adapter}, closed`, () => {
    it('closes idempotently and refuses calls afterwards', async () => {
      const store = await create()
      await store.close()
      await store.close()
      await assert.rejects(store.listNamespaces(newId('org')))
    })
  })
}
