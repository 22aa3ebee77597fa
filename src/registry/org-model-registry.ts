import type { Readable } from 'node:stream'
import { type ArchiveWorkspace, archiveTooLarge } from '../archives/archive-workspace.js'
import { artifactKey } from '../artifacts/artifact-key.js'
import type { ArtifactKey, ArtifactStore } from '../artifacts/artifact-store.js'
import { UNDEPLOYED } from '../domain/deployment-state.js'
import { newId } from '../domain/ids.js'
import {
  DEFAULT_SERVING,
  type Model,
  modelIdOf,
  type ResourceRequirements,
} from '../domain/model.js'
import type { ModelFormat } from '../domain/model-format.js'
import type { OrgModel } from '../domain/org-model.js'
import { assertCustomModelsEnabled, type Principal } from '../domain/organization.js'
import { BerthError, isBerthError } from '../errors/berth-error.js'
import { ERROR_CODES } from '../errors/error-codes.js'
import type { ModelRecords, NamespaceRecords, OrgModelRecords } from '../metadata/metadata-store.js'
import { orgModelNotFound } from '../metadata/store-errors.js'
import type { ModelCatalog } from './model-catalog.js'
import { UndoStack } from './undo-stack.js'
import type { UploadPipeline } from './upload-pipeline.js'
import type { UploadSignature } from './upload-signature.js'

/** What `POST /v1/models/uploads` asks for (validated by the route). */
export interface OrgUploadRequest {
  readonly name: string
  readonly version: string
  readonly format: ModelFormat
  readonly description: string | null
  readonly framework: string | null
  readonly taskType: string | null
  readonly resources: ResourceRequirements
  readonly expiresInSeconds: number
  /** The size the client says it will upload (Mixpeek's `file_size_bytes`), if given. */
  readonly declaredSizeBytes: number | null
}

export interface OrgUploadTicket {
  readonly model: OrgModel
  /** Where the client `PUT`s the archive: S3 itself, or berth's signed URL. */
  readonly presignedUrl: string
  /** The archive's key in the artifact store (Mixpeek's `s3_key`). */
  readonly storageKey: string
}

export interface OrgModelRegistryDeps {
  /** Its own records, and reads of the namespaces' models that enable its models. */
  readonly metadata: OrgModelRecords &
    Pick<NamespaceRecords, 'listNamespaces'> &
    Pick<ModelRecords, 'findModel' | 'listModels'>
  readonly artifacts: ArtifactStore
  readonly workspace: ArchiveWorkspace
  /** Namespaces of custom-model calls, and the removal of a disabled org model. */
  readonly catalog: Pick<ModelCatalog, 'namespaceFor' | 'delete'>
  /** Validation exactly as a direct upload's, and the enabled model's recording. */
  readonly uploads: Pick<
    UploadPipeline,
    'stageArchive' | 'discardStaged' | 'validateArchive' | 'addEnabled'
  >
  readonly signature: UploadSignature
}

export interface OrgModelRegistryOptions {
  /** Base of berth's own upload URLs (stores that cannot presign). */
  readonly publicUrl: string
  readonly maxArchiveBytes: number
  readonly now?: () => Date
}

/**
 * The organization registry (Mixpeek's presigned flow): a model is uploaded once
 * for the organization through a presigned URL, validated on confirm exactly as a direct upload,
 * and enabled in any of the organization's namespaces, where it is listed, deployed
 * and served like a direct upload. Its archive is the organization's until the org model is
 * deleted, which is refused while a namespace enables it.
 */
export class OrgModelRegistry {
  readonly #deps: OrgModelRegistryDeps
  readonly #options: OrgModelRegistryOptions
  readonly #now: () => Date

  constructor(deps: OrgModelRegistryDeps, options: OrgModelRegistryOptions) {
    this.#deps = deps
    this.#options = options
    this.#now = options.now ?? (() => new Date())
  }

  /** Records a `pending` org model and hands out where to put its archive. */
  async createUpload(principal: Principal, request: OrgUploadRequest): Promise<OrgUploadTicket> {
    assertCustomModelsEnabled(principal)
    // Refused before anything is recorded: it could never pass validation.
    if (request.declaredSizeBytes !== null) this.#checkSize(request.declaredSizeBytes)
    const now = this.#now()
    const uploadId = newId('upl')
    const key = artifactKey('org', principal.organizationId, `${uploadId}.tar.gz`)
    const expiresAt = new Date(now.getTime() + request.expiresInSeconds * 1000)
    const model: OrgModel = {
      organizationId: principal.organizationId,
      modelId: modelIdOf(request.name, request.version),
      uploadId,
      name: request.name,
      version: request.version,
      description: request.description,
      format: request.format,
      framework: request.framework,
      taskType: request.taskType,
      resources: request.resources,
      archive: { key, url: this.#deps.artifacts.urlOf(key), sha256: null, sizeBytes: null },
      validationStatus: 'pending',
      validationErrors: [],
      manifest: null,
      uploadExpiresAt: expiresAt.toISOString(),
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
    }
    await this.#deps.metadata.createOrgModel(model)
    const presigned = await this.#deps.artifacts.presignPut(key, request.expiresInSeconds)
    return {
      model,
      presignedUrl: presigned ?? this.#berthUrl(uploadId, expiresAt),
      storageKey: key,
    }
  }

  /**
   * Takes the archive `PUT` to berth's signed URL (stores that cannot presign). Throws
   * `upload_url_invalid` (403) for a tampered or expired signature, `upload_not_found` for an
   * unknown upload, `model_already_exists` when the archive is already there, and
   * `archive_too_large` past the limit (nothing is kept).
   */
  async receiveArchive(
    uploadId: string,
    query: { readonly expires: string; readonly signature: string },
    body: Readable,
  ): Promise<{ sizeBytes: number }> {
    const signature = this.#deps.signature
    if (!signature.verify(uploadId, query.expires, query.signature, this.#now().getTime())) {
      body.resume()
      throw new BerthError('upload_url_invalid', 'the upload URL is invalid or has expired', {
        details: { upload_id: uploadId },
      })
    }
    const model = await this.#findUpload(uploadId)
    const staged = await this.#deps.workspace.stage(body, this.#options.maxArchiveBytes)
    try {
      return await this.#deps.artifacts.putFile(model.archive.key as ArtifactKey, staged.path)
    } catch (err) {
      if (isBerthError(err, 'artifact_exists')) {
        throw new BerthError('upload_already_received', 'this upload already has its archive', {
          details: { upload_id: uploadId },
        })
      }
      throw err
    } finally {
      await this.#deps.workspace.remove(staged.path)
    }
  }

  /**
   * Validates the uploaded archive exactly as a direct upload and records the
   * outcome: `passed` with the manifest, or `failed` with the errors (the archive is then
   * removed: nothing servable, nothing orphaned). Confirming again answers the recorded outcome.
   * Throws `upload_not_found`, and `upload_not_received` while no archive is there.
   */
  async confirm(principal: Principal, uploadId: string): Promise<OrgModel> {
    assertCustomModelsEnabled(principal)
    const model = await this.#findUpload(uploadId, principal.organizationId)
    if (model.validationStatus !== 'pending') return model
    const key = model.archive.key as ArtifactKey
    const received = await this.#deps.artifacts.stat(key)
    if (received === undefined) {
      throw new BerthError(
        'upload_not_received',
        `no archive was uploaded for "${uploadId}": PUT it to the presigned URL first`,
        { details: { upload_id: uploadId } },
      )
    }
    const { artifacts, uploads, metadata } = this.#deps
    let outcome: Pick<OrgModel, 'validationStatus' | 'validationErrors' | 'manifest'>
    let stored: { sha256: string; sizeBytes: number } | undefined
    const cleanup = new UndoStack()
    try {
      // Bounded here too: nothing bounded what a client PUT to S3. Its size is known, so an
      // object past the limit is refused as such before a byte of it is read.
      this.#checkSize(received.sizeBytes)
      const staged = await uploads.stageArchive(await artifacts.get(key))
      cleanup.push(() => uploads.discardStaged(staged))
      const manifest = await uploads.validateArchive(staged, model.format)
      outcome = { validationStatus: 'passed', validationErrors: [], manifest }
      stored = { sha256: staged.sha256, sizeBytes: staged.sizeBytes }
    } catch (err) {
      // The archive's own faults are the outcome; anything else is the server's (500).
      if (!isArchiveFault(err)) throw err
      outcome = {
        validationStatus: 'failed',
        validationErrors: [`${err.code}: ${err.message}`],
        manifest: null,
      }
    } finally {
      await cleanup.unwind()
    }
    // A refused archive is not kept: nothing servable, nothing orphaned.
    if (stored === undefined) await artifacts.delete(key)
    const validation = {
      ...outcome,
      sha256: stored?.sha256 ?? null,
      sizeBytes: stored?.sizeBytes ?? null,
      updatedAt: this.#now().toISOString(),
    }
    if (!(await metadata.setOrgModelValidation(uploadId, validation))) {
      throw uploadNotFound(uploadId)
    }
    const { sha256, sizeBytes, ...rest } = validation
    return { ...model, ...rest, archive: { ...model.archive, sha256, sizeBytes } }
  }

  list(principal: Principal): Promise<OrgModel[]> {
    assertCustomModelsEnabled(principal)
    return this.#deps.metadata.listOrgModels(principal.organizationId)
  }

  /** Throws `org_model_not_found`. */
  async get(principal: Principal, modelId: string): Promise<OrgModel> {
    assertCustomModelsEnabled(principal)
    const model = await this.#deps.metadata.findOrgModel(principal.organizationId, modelId)
    if (model === undefined) throw orgModelNotFound(modelId)
    return model
  }

  /**
   * Deletes the org model and its archive. Throws `org_model_not_found`, and `org_model_enabled`
   * (409) while a namespace enables it.
   */
  async delete(principal: Principal, modelId: string): Promise<OrgModel> {
    const model = await this.get(principal, modelId)
    const outcome = await this.#deps.metadata.deleteOrgModel(model.uploadId)
    if (outcome === 'missing') throw orgModelNotFound(modelId)
    if (outcome === 'enabled') {
      throw new BerthError(
        'org_model_enabled',
        `org model "${modelId}" is enabled in a namespace: disable it in every namespace first`,
        { details: { model_id: modelId } },
      )
    }
    await this.#deps.artifacts.delete(model.archive.key as ArtifactKey)
    return model
  }

  /** The namespace models that enable each org model, by the org model's upload id. */
  async enabledCopies(principal: Principal): Promise<Map<string, Model[]>> {
    const { metadata } = this.#deps
    const copies = new Map<string, Model[]>()
    for (const namespace of await metadata.listNamespaces(principal.organizationId)) {
      for (const model of await metadata.listModels(namespace.id)) {
        if (model.orgUploadId === null) continue
        copies.set(model.orgUploadId, [...(copies.get(model.orgUploadId) ?? []), model])
      }
    }
    return copies
  }

  /** Every org model, with whether the namespace enables it. */
  async available(
    principal: Principal,
    namespaceRef: string,
  ): Promise<{ namespaceId: string; models: Array<{ model: OrgModel; enabled: boolean }> }> {
    const namespace = await this.#deps.catalog.namespaceFor(principal, namespaceRef)
    const enabled = new Set(
      (await this.#deps.metadata.listModels(namespace.id)).map((m) => m.orgUploadId),
    )
    const models = await this.#deps.metadata.listOrgModels(principal.organizationId)
    return {
      namespaceId: namespace.id,
      models: models.map((model) => ({ model, enabled: enabled.has(model.uploadId) })),
    }
  }

  /**
   * Enables a validated org model in a namespace: a namespace model sharing the org model's
   * archive, installed here, deployed when asked. Throws `org_model_not_found`,
   * `org_model_not_validated` (400) unless validation passed, `model_already_exists` when the
   * namespace has the `model_id` (enabled already, or uploaded directly).
   */
  async enable(
    principal: Principal,
    namespaceRef: string,
    modelId: string,
    options: {
      readonly deploy: boolean
      readonly wait: boolean
      readonly resourceOverrides: Partial<ResourceRequirements>
    },
  ): Promise<Model> {
    const namespace = await this.#deps.catalog.namespaceFor(principal, namespaceRef)
    const org = await this.get(principal, modelId)
    if (org.validationStatus !== 'passed' || org.manifest === null) {
      throw new BerthError(
        'org_model_not_validated',
        `org model "${modelId}" has not passed validation (${org.validationStatus})`,
        {
          details: {
            model_id: modelId,
            validation_status: org.validationStatus,
            validation_errors: org.validationErrors,
          },
        },
      )
    }
    const now = this.#now().toISOString()
    const model: Model = {
      namespaceId: namespace.id,
      organizationId: namespace.organizationId,
      modelId: org.modelId,
      uploadId: newId('upl'),
      orgUploadId: org.uploadId,
      name: org.name,
      version: org.version,
      format: org.format,
      framework: org.framework,
      taskType: org.taskType,
      resources: { ...org.resources, ...options.resourceOverrides },
      // Enabled without a deploy, it is served on its first request.
      serving: { ...DEFAULT_SERVING, loadPolicy: options.deploy ? 'eager' : 'on_demand' },
      archive: {
        key: org.archive.key,
        url: org.archive.url,
        sha256: org.archive.sha256 ?? '',
        sizeBytes: org.archive.sizeBytes ?? 0,
      },
      manifest: org.manifest,
      deployment: UNDEPLOYED(now),
      createdAt: now,
      updatedAt: now,
    }
    return this.#deps.uploads.addEnabled(model, { deploy: options.deploy, wait: options.wait })
  }

  /**
   * Removes the org model from the namespace (undeployed first); the org model stays. Throws
   * `org_model_not_enabled` when the namespace does not enable it.
   */
  async disable(principal: Principal, namespaceRef: string, modelId: string): Promise<Model> {
    const namespace = await this.#deps.catalog.namespaceFor(principal, namespaceRef)
    const model = await this.#deps.metadata.findModel(namespace.id, modelId)
    if (model === undefined || model.orgUploadId === null) {
      throw new BerthError(
        'org_model_not_enabled',
        `org model "${modelId}" is not enabled in this namespace`,
        { details: { model_id: modelId, namespace_id: namespace.id } },
      )
    }
    return this.#deps.catalog.delete(principal, namespace.id, modelId)
  }

  /** Throws `archive_too_large` for an archive whose size, known beforehand, is past the limit. */
  #checkSize(sizeBytes: number): void {
    if (sizeBytes > this.#options.maxArchiveBytes) {
      throw archiveTooLarge(this.#options.maxArchiveBytes)
    }
  }

  /** The upload's org model; with `organizationId`, only that organization's (else not found). */
  async #findUpload(uploadId: string, organizationId?: string): Promise<OrgModel> {
    const model = await this.#deps.metadata.findOrgModelByUpload(uploadId)
    const visible = organizationId === undefined || model?.organizationId === organizationId
    if (model === undefined || !visible) throw uploadNotFound(uploadId)
    return model
  }

  #berthUrl(uploadId: string, expiresAt: Date): string {
    const expires = Math.floor(expiresAt.getTime() / 1000)
    const signature = this.#deps.signature.sign(uploadId, expires)
    return `${this.#options.publicUrl}/v1/models/uploads/${uploadId}/archive?expires=${expires}&signature=${signature}`
  }
}

/** A fault of the uploaded archive itself (a 400 or 413 of a direct upload). */
function isArchiveFault(err: unknown): err is BerthError {
  if (!isBerthError(err)) return false
  const kind = ERROR_CODES[err.code]
  return kind === 'invalid_argument' || kind === 'too_large'
}

function uploadNotFound(uploadId: string): BerthError {
  return new BerthError('upload_not_found', `upload "${uploadId}" not found`, {
    details: { upload_id: uploadId },
  })
}
