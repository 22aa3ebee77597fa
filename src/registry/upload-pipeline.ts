import type { Readable } from 'node:stream'
import type { ArchiveLimits } from '../archives/archive-limits.js'
import {
  type ArchiveWorkspace,
  archiveTooLarge,
  type UnpackedArchive,
} from '../archives/archive-workspace.js'
import { artifactKey } from '../artifacts/artifact-key.js'
import type { ArtifactStore } from '../artifacts/artifact-store.js'
import { type CrashHook, noCrash } from '../domain/crash-points.js'
import { NEW_DEPLOYMENT, uploadDesired } from '../domain/deployment-state.js'
import { newId } from '../domain/ids.js'
import { type Manifest, servedOnnx } from '../domain/manifest.js'
import {
  type Model,
  type ModelDescriptor,
  modelIdOf,
  type ServingSettings,
} from '../domain/model.js'
import type { ModelFormat } from '../domain/model-format.js'
import type { Namespace } from '../domain/namespace.js'
import type { Principal } from '../domain/organization.js'
import { validateModel } from '../formats/validate-model.js'
import type { ModelRecords } from '../metadata/metadata-store.js'
import { modelAlreadyExists } from '../metadata/store-errors.js'
import type { ModelLoadCheck } from '../scheduler/model-load-check.js'
import type { DeploymentService } from './deployment-service.js'
import type { InstalledModels } from './installed-models.js'
import type { ModelCatalog } from './model-catalog.js'
import { UndoStack } from './undo-stack.js'

/** A direct upload, its fields validated by the caller: the staged archive and what it is. */
export interface UploadRequest extends ModelDescriptor {
  readonly archive: UnpackedArchive
  readonly serving: ServingSettings
  /** Deploy right after recording the model. */
  readonly deploy: boolean
}

export interface UploadPipelineDeps {
  readonly metadata: Pick<ModelRecords, 'findModel' | 'createModel'>
  readonly artifacts: Pick<ArtifactStore, 'putFile' | 'delete' | 'urlOf'>
  readonly workspace: ArchiveWorkspace
  readonly installed: Pick<
    InstalledModels,
    'beginInstall' | 'install' | 'installLocally' | 'forgetLocally'
  >
  readonly loadCheck: ModelLoadCheck
  readonly catalog: Pick<ModelCatalog, 'namespaceFor'>
  readonly deployments: Pick<DeploymentService, 'start'>
  /** Crash-consistency tests kill the server here (`BERTH_TEST_CRASH_AT`); a no-op otherwise. */
  readonly crash?: CrashHook
}

export interface UploadPipelineOptions {
  readonly maxArchiveBytes: number
  readonly archiveLimits: ArchiveLimits
  readonly now?: () => Date
}

/** Room for the multipart framing and form fields around the archive. */
const FORM_ALLOWANCE_BYTES = 1024 * 1024

/**
 * Models entering a namespace: a direct upload (stage → validate → store → install → record →
 * deploy when asked), and an org model enabled from the organization registry. Each step pushes
 * its undo; whatever fails, nothing is left behind.
 */
export class UploadPipeline {
  readonly #deps: UploadPipelineDeps
  readonly #options: UploadPipelineOptions
  readonly #now: () => Date

  constructor(deps: UploadPipelineDeps, options: UploadPipelineOptions) {
    this.#deps = deps
    this.#options = options
    this.#now = options.now ?? (() => new Date())
  }

  /**
   * What is checked before an upload's body is read: the caller's tier
   * (`custom_models_not_enabled`), the namespace (`namespace_not_found`), and a declared length
   * already past the limit (`archive_too_large`). Resolves the namespace.
   */
  async begin(
    principal: Principal,
    namespaceRef: string,
    declaredLength: number | undefined,
  ): Promise<Namespace> {
    const namespace = await this.#deps.catalog.namespaceFor(principal, namespaceRef)
    const max = this.#options.maxArchiveBytes
    if (declaredLength !== undefined && declaredLength > max + FORM_ALLOWANCE_BYTES) {
      throw archiveTooLarge(max)
    }
    return namespace
  }

  /**
   * Streams the archive to local disk while hashing it, and inspects and unpacks it in the same
   * pass. Throws `archive_too_large` and the `archive_*` refusals, as soon as they show.
   */
  stageArchive(source: Readable): Promise<UnpackedArchive> {
    const { maxArchiveBytes, archiveLimits } = this.#options
    return this.#deps.workspace.stageAndUnpack(source, maxArchiveBytes, archiveLimits)
  }

  /** Forgets a staged archive and its files (any failure before `completeUpload`). Idempotent. */
  async discardStaged(staged: UnpackedArchive): Promise<void> {
    await this.#deps.workspace.remove(staged.path)
    await this.#deps.workspace.remove(staged.unpackDir)
  }

  /**
   * Refuses a taken `model_id` (409 `model_already_exists`), inspects and validates the archive
   * (400 `archive_*` / format codes; an ONNX graph must also load in a runner:
   * `model_load_failed`), then stores the archive, installs the unpacked files, records the
   * model and deploys it when asked. Resolves the model with its deployment as it then stands.
   * Whatever fails, nothing is left behind; the staged archive is always removed.
   */
  async completeUpload(
    namespace: Namespace,
    request: UploadRequest,
    options: { readonly wait: boolean } = { wait: false },
  ): Promise<Model> {
    const { metadata, artifacts, installed } = this.#deps
    const cleanup = new UndoStack()
    cleanup.push(() => this.discardStaged(request.archive))
    const undo = new UndoStack()
    const crash = this.#deps.crash ?? noCrash
    crash('upload_staged')
    let recorded: Model
    try {
      const modelId = modelIdOf(request.name, request.version)
      if ((await metadata.findModel(namespace.id, modelId)) !== undefined) {
        throw modelAlreadyExists(namespace.id, modelId)
      }
      const { path, sha256, sizeBytes, inspected } = request.archive
      const manifest = await this.validateArchive(request.archive, request.format)
      crash('upload_validated')

      const uploadId = newId('upl')
      const key = artifactKey(namespace.id, `${uploadId}.tar.gz`)
      await artifacts.putFile(key, path)
      undo.push(() => artifacts.delete(key))
      crash('upload_stored')
      const target = { namespaceId: namespace.id, uploadId }
      const installing = installed.beginInstall(target)
      cleanup.push(async () => installing())
      undo.push(() => installed.forgetLocally(target))
      await installed.install(inspected.root, target)
      crash('upload_installed')
      const now = this.#now().toISOString()
      const model: Model = {
        namespaceId: namespace.id,
        organizationId: namespace.organizationId,
        orgUploadId: null,
        modelId,
        uploadId,
        name: request.name,
        version: request.version,
        format: request.format,
        framework: request.framework,
        taskType: request.taskType,
        resources: request.resources,
        serving: request.serving,
        archive: { key, url: artifacts.urlOf(key), sha256, sizeBytes },
        manifest,
        deployment: NEW_DEPLOYMENT(now, uploadDesired(request.deploy, request.serving.loadPolicy)),
        createdAt: now,
        updatedAt: now,
      }
      await metadata.createModel(model)
      crash('upload_recorded')
      recorded = model
    } catch (err) {
      await undo.unwind()
      throw err
    } finally {
      await cleanup.unwind()
    }
    return this.#deployIfAsked(recorded, { deploy: request.deploy, wait: options.wait })
  }

  /**
   * Validates an unpacked archive as an upload does (format checks, the trial load of an ONNX
   * graph). Throws the upload's 400s.
   */
  async validateArchive(archive: UnpackedArchive, format: ModelFormat): Promise<Manifest> {
    const manifest = await validateModel(format, archive.inspected)
    const onnxFile = servedOnnx(manifest)?.primaryFile
    if (onnxFile !== undefined) {
      await this.#deps.loadCheck.checkOnnx(archive.inspected.root, onnxFile)
    }
    return manifest
  }

  /**
   * Records an org model enabled in a namespace (`model.orgUploadId` set) once its files are
   * installed here, then deploys it when asked. Throws `model_already_exists` when the namespace
   * has its `model_id`, `stored_archive_corrupt` when its archive is not the one validated.
   */
  async addEnabled(
    model: Model,
    options: { readonly deploy: boolean; readonly wait: boolean },
  ): Promise<Model> {
    const { installed, metadata } = this.#deps
    const installing = installed.beginInstall(model)
    try {
      await installed.installLocally(model)
      await metadata.createModel({
        ...model,
        deployment: NEW_DEPLOYMENT(
          model.deployment.status.since,
          uploadDesired(options.deploy, model.serving.loadPolicy),
        ),
      })
    } catch (err) {
      await installed.forgetLocally(model)
      throw err
    } finally {
      installing()
    }
    return this.#deployIfAsked(model, options)
  }

  async #deployIfAsked(
    model: Model,
    options: { readonly deploy: boolean; readonly wait: boolean },
  ): Promise<Model> {
    if (!options.deploy) return model
    return (await this.#deps.deployments.start(model, { wait: options.wait, reload: false })).model
  }
}
