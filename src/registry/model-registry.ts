import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { inspectArchive } from '../archives/archive-inspector.js'
import type { ArchiveLimits } from '../archives/archive-limits.js'
import {
  type ArchiveWorkspace,
  archiveTooLarge,
  type StagedArchive,
} from '../archives/archive-workspace.js'
import { artifactKey } from '../artifacts/artifact-key.js'
import type { ArtifactKey, ArtifactStore } from '../artifacts/artifact-store.js'
import type { DeploymentControl } from '../deployments/deployment-control.js'
import {
  type MixpeekDeploymentStatus,
  mixpeekStatus,
  UNDEPLOYED,
} from '../domain/deployment-state.js'
import { newId } from '../domain/ids.js'
import { type Manifest, servedOnnx, storedWeights } from '../domain/manifest.js'
import {
  MODEL_VERSION_PATTERN,
  type Model,
  modelIdOf,
  type ServingSettings,
} from '../domain/model.js'
import type { ModelFormat } from '../domain/model-format.js'
import type { Namespace } from '../domain/namespace.js'
import { assertCustomModelsEnabled, type Principal } from '../domain/organization.js'
import { BerthError, fieldValidationError } from '../errors/berth-error.js'
import { validateModel } from '../formats/validate-model.js'
import { openWeights, type WeightsReader, type WeightTensor } from '../formats/weights-reader.js'
import type { ModelRecords } from '../metadata/metadata-store.js'
import { modelAlreadyExists } from '../metadata/store-errors.js'
import type { NamespaceService } from '../namespaces/namespace-service.js'
import type { ModelLoadCheck } from '../scheduler/model-load-check.js'
import { parseUploadFields } from './upload-fields.js'

export interface UploadResult {
  readonly model: Model
  readonly deploymentStatus: MixpeekDeploymentStatus
}

/** What a deploy request did. */
export interface DeployResult {
  readonly model: Model
  /** The model was already deployed: nothing was loaded. */
  readonly cached: boolean
}

export interface ModelRegistryOptions {
  readonly maxArchiveBytes: number
  readonly archiveLimits: ArchiveLimits
  /** Bound on `wait` for upload and deploy; past it the answer shows the state so far. */
  readonly waitTimeoutMs: number
  readonly now?: () => Date
}

const GIB = 1024 ** 3

/**
 * Custom models in namespaces: upload (stage → validate → commit), list, get, delete. Every
 * method checks the caller's tier first (`custom_models_not_enabled`), then the namespace.
 */
export class ModelRegistry {
  readonly #metadata: ModelRecords
  readonly #artifacts: ArtifactStore
  readonly #workspace: ArchiveWorkspace
  readonly #namespaces: NamespaceService
  readonly #loadCheck: ModelLoadCheck
  readonly #deployments: DeploymentControl
  readonly #options: ModelRegistryOptions
  /** `namespaceId/uploadId` of models whose files are installed and whose record is not yet. */
  readonly #installing = new Set<string>()
  readonly #now: () => Date

  constructor(
    deps: {
      readonly metadata: ModelRecords
      readonly artifacts: ArtifactStore
      readonly workspace: ArchiveWorkspace
      readonly namespaces: NamespaceService
      readonly loadCheck: ModelLoadCheck
      readonly deployments: DeploymentControl
    },
    options: ModelRegistryOptions,
  ) {
    this.#metadata = deps.metadata
    this.#artifacts = deps.artifacts
    this.#workspace = deps.workspace
    this.#namespaces = deps.namespaces
    this.#loadCheck = deps.loadCheck
    this.#deployments = deps.deployments
    this.#options = options
    this.#now = options.now ?? (() => new Date())
  }

  /** The namespace a custom-model call acts on: 403 for other tiers, then 404. */
  async namespaceFor(principal: Principal, namespaceRef: string): Promise<Namespace> {
    assertCustomModelsEnabled(principal)
    return this.#namespaces.get(principal, namespaceRef)
  }

  /**
   * Refuses an upload whose declared length already exceeds the limit, before reading it. The
   * allowance covers the multipart framing and form fields around the archive.
   */
  assertDeclaredLength(contentLength: number | undefined): void {
    const allowance = 1024 * 1024
    if (contentLength !== undefined && contentLength > this.#options.maxArchiveBytes + allowance) {
      throw archiveTooLarge(this.#options.maxArchiveBytes)
    }
  }

  /** Streams the archive to local disk while hashing it. Throws `archive_too_large`. */
  stageArchive(source: Readable): Promise<StagedArchive> {
    return this.#workspace.stage(source, this.#options.maxArchiveBytes)
  }

  /** Forgets a staged archive (any failure before `completeUpload`). Idempotent. */
  discardStaged(staged: StagedArchive): Promise<void> {
    return this.#workspace.remove(staged.path)
  }

  /**
   * Validates the fields (422 listing all), refuses a taken `model_id` (409), inspects and
   * validates the archive (400 `archive_*` / format codes; an ONNX graph must also load in a
   * runner: `model_load_failed`), then stores the archive, installs
   * the unpacked files and records the model. Whatever fails, nothing is left behind; the
   * staged archive is always removed.
   */
  async completeUpload(
    namespace: Namespace,
    staged: StagedArchive | undefined,
    rawFields: Readonly<Record<string, string>>,
    options: { readonly wait: boolean } = { wait: false },
  ): Promise<UploadResult> {
    const cleanup: Array<() => Promise<void>> = []
    if (staged !== undefined) cleanup.push(() => this.discardStaged(staged))
    let recorded: Model
    let deploy: boolean
    try {
      const parsed = parseUploadFields(rawFields, staged !== undefined)
      if ('errors' in parsed) throw fieldValidationError(parsed.errors)
      if (staged === undefined) throw new Error('unreachable: a missing file is a field error')
      const fields = parsed.fields
      deploy = fields.deploy
      const modelId = modelIdOf(fields.name, fields.version)
      if ((await this.#metadata.findModel(namespace.id, modelId)) !== undefined) {
        throw modelAlreadyExists(namespace.id, modelId)
      }

      const { root, manifest } = await this.#inspectAndValidate(staged.path, fields.format, cleanup)

      const uploadId = newId('upl')
      const key = archiveKey(namespace, uploadId)
      await this.#artifacts.putFile(key, staged.path)
      const undo = [
        () => this.#artifacts.delete(key),
        () => this.#workspace.remove(this.#workspace.modelDir(namespace.id, uploadId)),
      ]
      const installing = `${namespace.id}/${uploadId}`
      this.#installing.add(installing)
      cleanup.push(async () => {
        this.#installing.delete(installing)
      })
      try {
        await this.#workspace.install(root, namespace.id, uploadId)
        const now = this.#now().toISOString()
        const model: Model = {
          namespaceId: namespace.id,
          organizationId: namespace.organizationId,
          orgUploadId: null,
          modelId,
          uploadId,
          name: fields.name,
          version: fields.version,
          format: fields.format,
          framework: fields.framework,
          taskType: fields.taskType,
          resources: {
            numCpus: fields.numCpus,
            numGpus: fields.numGpus,
            memoryBytes: Math.round(fields.memoryGb * GIB),
          },
          serving: fields.serving,
          archive: {
            key,
            url: this.#artifacts.urlOf(key),
            sha256: staged.sha256,
            sizeBytes: staged.sizeBytes,
          },
          manifest,
          deployment: UNDEPLOYED(now),
          createdAt: now,
          updatedAt: now,
        }
        await this.#metadata.createModel(model)
        recorded = model
      } catch (err) {
        cleanup.push(...undo)
        throw err
      }
    } finally {
      for (const step of cleanup) await step().catch(() => undefined)
    }
    if (!deploy) return { model: recorded, deploymentStatus: 'not_deployed' }
    const deployed = await this.#startDeployment(recorded, options.wait, false)
    return {
      model: deployed.model,
      deploymentStatus: mixpeekStatus(deployed.model.deployment.status.state),
    }
  }

  /**
   * Validates an archive as an upload does (inspection, format checks, the trial load
   * of an ONNX graph) and keeps nothing. Throws the upload's 400s.
   */
  async validateArchive(path: string, format: ModelFormat): Promise<Manifest> {
    const cleanup: Array<() => Promise<void>> = []
    try {
      return (await this.#inspectAndValidate(path, format, cleanup)).manifest
    } finally {
      for (const step of cleanup) await step().catch(() => undefined)
    }
  }

  /** Unpacks into a new folder (its removal pushed on `cleanup`) and validates the model. */
  async #inspectAndValidate(
    path: string,
    format: ModelFormat,
    cleanup: Array<() => Promise<void>>,
  ): Promise<{ root: string; manifest: Manifest }> {
    const unpackDir = await this.#workspace.newUnpackDir()
    cleanup.push(() => this.#workspace.remove(unpackDir))
    const inspected = await inspectArchive(path, unpackDir, this.#options.archiveLimits)
    const manifest = await validateModel(format, inspected)
    const onnxFile = servedOnnx(manifest)?.primaryFile
    if (onnxFile !== undefined) await this.#loadCheck.checkOnnx(join(inspected.root, onnxFile))
    return { root: inspected.root, manifest }
  }

  /**
   * Records an org model enabled in a namespace (`model.orgUploadId` set) once its files are
   * installed here, then deploys it when asked. Throws `model_already_exists` when the namespace
   * has its `model_id`, `org_model_not_found` when the org model went meanwhile.
   */
  async addEnabled(
    model: Model,
    options: { deploy: boolean; wait: boolean },
  ): Promise<UploadResult> {
    const installing = `${model.namespaceId}/${model.uploadId}`
    this.#installing.add(installing)
    try {
      await this.installLocally(model)
      await this.#metadata.createModel(model)
    } catch (err) {
      await this.forgetLocally(model)
      throw err
    } finally {
      this.#installing.delete(installing)
    }
    if (!options.deploy) return { model, deploymentStatus: 'not_deployed' }
    const deployed = await this.#startDeployment(model, options.wait, false)
    return {
      model: deployed.model,
      deploymentStatus: mixpeekStatus(deployed.model.deployment.status.state),
    }
  }

  /**
   * Deploys the model: already deployed is `cached` unless `reload` asks for a
   * fresh runner. With `wait`, resolves once it is `deployed` or `failed` (bounded).
   */
  async deploy(
    principal: Principal,
    namespaceRef: string,
    modelId: string,
    options: {
      readonly wait: boolean
      readonly reload: boolean
      /** New serving settings; a deployed model is redeployed to apply them. */
      readonly serving?: Partial<ServingSettings>
    },
  ): Promise<DeployResult> {
    let model = await this.get(principal, namespaceRef, modelId)
    let reload = options.reload
    if (options.serving !== undefined) {
      const serving = { ...model.serving, ...options.serving }
      if (JSON.stringify(serving) !== JSON.stringify(model.serving)) {
        await this.#metadata.setServing(model.namespaceId, model.modelId, serving)
        model = { ...model, serving }
        reload = true
      }
    }
    return this.#startDeployment(model, options.wait, reload)
  }

  /** Stops serving the model; resolves once its runners are gone. Throws `model_not_found`. */
  async undeploy(principal: Principal, namespaceRef: string, modelId: string): Promise<Model> {
    const model = await this.get(principal, namespaceRef, modelId)
    return { ...model, deployment: await this.#deployments.undeploy(model) }
  }

  async #startDeployment(model: Model, wait: boolean, reload: boolean): Promise<DeployResult> {
    const { cached } = await this.#deployments.deploy(model, { reload })
    const deployment = wait
      ? await this.#deployments.waitUntilSettled(model, this.#options.waitTimeoutMs)
      : this.#deployments.deploymentOf(model)
    return { model: { ...model, deployment }, cached }
  }

  /**
   * Removes installed model folders that no model record owns (a crash between installing the
   * files and recording the model, or during a delete), if untouched for `olderThanMs`.
   * Resolves how many were removed. Run at start.
   */
  async removeOrphanedFiles(olderThanMs: number, now = Date.now()): Promise<number> {
    const owned = new Map<string, Set<string>>()
    let removed = 0
    for (const dir of await this.#workspace.listInstalled()) {
      if (now - dir.modifiedMs <= olderThanMs) continue
      let uploads = owned.get(dir.namespaceId)
      if (uploads === undefined) {
        const models = await this.#metadata.listModels(dir.namespaceId)
        uploads = new Set(models.map((m) => m.uploadId))
        owned.set(dir.namespaceId, uploads)
      }
      if (!uploads.has(dir.uploadId)) {
        await this.#workspace.remove(this.#workspace.modelDir(dir.namespaceId, dir.uploadId))
        removed += 1
      }
    }
    return removed
  }

  /**
   * The installed model folders (`namespaceId/uploadId`) whose model was recorded before this
   * call: folders of an upload or enable still in progress are left out.
   */
  async recordedInstalls(): Promise<string[]> {
    const installing = new Set(this.#installing)
    return (await this.#workspace.listInstalled())
      .map((dir) => `${dir.namespaceId}/${dir.uploadId}`)
      .filter((key) => !installing.has(key))
  }

  /** Removes installed model folders (`namespaceId/uploadId` keys). */
  async removeInstalls(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      const [namespaceId = '', uploadId = ''] = key.split('/')
      await this.#workspace.remove(this.#workspace.modelDir(namespaceId, uploadId))
    }
  }

  /** The namespace's models, oldest first. */
  async list(
    principal: Principal,
    namespaceRef: string,
  ): Promise<{ namespace: Namespace; models: Model[] }> {
    const namespace = await this.namespaceFor(principal, namespaceRef)
    const models = await this.#metadata.listModels(namespace.id)
    return { namespace, models: models.map((m) => this.#current(m)) }
  }

  /** Throws `model_not_found`. */
  async get(principal: Principal, namespaceRef: string, modelId: string): Promise<Model> {
    // The hot path of inference (the endpoint URL carries the namespace id): a model this server
    // runs, in the caller's organization, needs no query at all. Its namespace exists: a
    // namespace that holds models cannot be deleted.
    assertCustomModelsEnabled(principal)
    const running = this.#deployments.liveModel(namespaceRef, modelId)
    if (running !== undefined && running.organizationId === principal.organizationId) return running
    const namespace = await this.namespaceFor(principal, namespaceRef)
    const live = this.#deployments.liveModel(namespace.id, modelId)
    if (live !== undefined) return live
    const model = await this.#metadata.findModel(namespace.id, modelId)
    if (model === undefined) throw modelNotFound(namespace, modelId)
    return this.#current(model)
  }

  /**
   * The model an Open Inference Protocol name means: a `model_id`, or a model name
   * standing for its highest deployed version (its highest version when none is deployed);
   * with `version`, that exact version. Throws `model_not_found`.
   */
  async resolve(
    principal: Principal,
    namespaceRef: string,
    name: string,
    version: string | undefined,
  ): Promise<Model> {
    const namespace = await this.namespaceFor(principal, namespaceRef)
    if (version !== undefined) {
      if (!MODEL_VERSION_PATTERN.test(version)) throw modelNotFound(namespace, `${name}@${version}`)
      return this.get(principal, namespace.id, modelIdOf(name, version))
    }
    const byId = await this.#metadata.findModel(namespace.id, name)
    if (byId !== undefined) return this.#current(byId)
    const versions = (await this.#metadata.listModels(namespace.id))
      .filter((m) => m.name === name)
      .map((m) => this.#current(m))
      .sort((a, b) => compareVersions(b.version, a.version))
    const chosen = versions.find((m) => m.deployment.status.state === 'deployed') ?? versions[0]
    if (chosen === undefined) throw modelNotFound(namespace, name)
    return chosen
  }

  /** Every version of the model named `name` in the namespace, highest first. */
  async versionsOf(model: Model): Promise<string[]> {
    return (await this.#metadata.listModels(model.namespaceId))
      .filter((m) => m.name === model.name)
      .map((m) => m.version)
      .sort((a, b) => compareVersions(b, a))
  }

  /**
   * The model's tensors (weights formats only): names, dtypes, shapes. Throws
   * `model_has_no_tensors` for a model stored as a graph (ONNX, TorchScript).
   */
  async tensors(
    principal: Principal,
    namespaceRef: string,
    modelId: string,
  ): Promise<{ model: Model; tensors: readonly WeightTensor[] }> {
    const model = await this.get(principal, namespaceRef, modelId)
    const reader = await this.#openWeights(model)
    try {
      return { model, tensors: reader.tensors }
    } finally {
      reader.close()
    }
  }

  /**
   * One tensor's bytes, row-major and little-endian, streamed from the installed files. The
   * stream owns the open files: they close when it ends or is destroyed. Throws
   * `model_has_no_tensors`, `tensor_not_found`.
   */
  async tensorBytes(
    principal: Principal,
    namespaceRef: string,
    modelId: string,
    name: string,
  ): Promise<{ tensor: WeightTensor; stream: Readable }> {
    const model = await this.get(principal, namespaceRef, modelId)
    const reader = await this.#openWeights(model)
    try {
      const tensor = reader.tensor(name)
      const stream = await reader.stream(name)
      stream.once('close', () => reader.close())
      return { tensor, stream }
    } catch (err) {
      reader.close()
      throw err
    }
  }

  async #openWeights(model: Model): Promise<WeightsReader> {
    const weights = storedWeights(model.manifest)
    if (weights === undefined) {
      throw new BerthError(
        'model_has_no_tensors',
        `model "${model.modelId}" is stored as a graph (${model.manifest.details.kind}), not as weights`,
        { details: { model_id: model.modelId } },
      )
    }
    return openWeights(this.#workspace.modelDir(model.namespaceId, model.uploadId), {
      source: weights.source,
      files: weights.weightFiles,
    })
  }

  /** Runner processes serving the model now. */
  replicasOf(model: Model): number {
    return this.#deployments.replicasOf(model)
  }

  /** The model with its deployment as this server runs it. */
  #current(model: Model): Model {
    return { ...model, deployment: this.#deployments.deploymentOf(model) }
  }

  /**
   * Makes sure this server has the model's unpacked files: a model uploaded through another
   * instance is fetched from the artifact store, checked against its recorded SHA-256, and
   * unpacked with the same limits as an upload. Throws when the archive is missing or altered.
   */
  async installLocally(model: Model): Promise<void> {
    const target = this.#workspace.modelDir(model.namespaceId, model.uploadId)
    if (await exists(target)) return
    const staged = await this.#workspace.stage(
      await this.#artifacts.get(model.archive.key as ArtifactKey),
      this.#options.maxArchiveBytes,
    )
    const unpackDir = await this.#workspace.newUnpackDir()
    try {
      if (staged.sha256 !== model.archive.sha256) {
        throw new Error(
          `the stored archive of ${model.namespaceId}/${model.modelId} does not match its recorded SHA-256`,
        )
      }
      const inspected = await inspectArchive(staged.path, unpackDir, this.#options.archiveLimits)
      // Another pass may have installed it meanwhile: keep the first.
      if (!(await exists(target))) {
        await this.#workspace.install(inspected.root, model.namespaceId, model.uploadId)
      }
    } finally {
      await this.#workspace.remove(staged.path)
      await this.#workspace.remove(unpackDir)
    }
  }

  /** Removes this server's unpacked files of a model deleted through another instance. */
  async forgetLocally(model: Model): Promise<void> {
    await this.#workspace.remove(this.#workspace.modelDir(model.namespaceId, model.uploadId))
  }

  /**
   * Undeploys the model, removes its record, then its stored archive (an enabled org model's
   * archive stays: it is the organization's) and its unpacked files. Throws `model_not_found`.
   */
  async delete(principal: Principal, namespaceRef: string, modelId: string): Promise<Model> {
    const namespace = await this.namespaceFor(principal, namespaceRef)
    const model = await this.#metadata.findModel(namespace.id, modelId)
    if (model !== undefined) await this.#deployments.remove(model)
    // Gone already, or deleted by a concurrent request between the two calls.
    if (model === undefined || !(await this.#metadata.deleteModel(namespace.id, modelId))) {
      throw modelNotFound(namespace, modelId)
    }
    // An enabled org model's archive is the organization's: it stays.
    if (model.orgUploadId === null) await this.#artifacts.delete(model.archive.key as ArtifactKey)
    await this.#workspace.remove(this.#workspace.modelDir(model.namespaceId, model.uploadId))
    return model
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

/** Orders `MAJOR.MINOR.PATCH` versions numerically. */
function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

function archiveKey(namespace: Namespace, uploadId: string): ArtifactKey {
  return artifactKey(namespace.id, `${uploadId}.tar.gz`)
}

function modelNotFound(namespace: Namespace, modelId: string): BerthError {
  return new BerthError('model_not_found', `model "${modelId}" not found`, {
    details: { namespace_id: namespace.id, model_id: modelId },
  })
}
