import type { Deployment } from '../domain/deployment-state.js'
import type { Model } from '../domain/model.js'
import type { LoadedSignature } from '../domain/serving-plan.js'
import type { Serving, ServingLookup } from '../inference/inference-service.js'
import type {
  DeploymentRecords,
  DesiredStateRow,
  ModelRecords,
} from '../metadata/metadata-store.js'
import type { DeploymentControl, DeployOptions } from './deployment-control.js'
import {
  ModelLifecycle,
  type ModelLifecycleDeps,
  type ModelLifecycleOptions,
} from './model-lifecycle.js'

export type DeploymentManagerOptions = ModelLifecycleOptions

export interface DeploymentManagerDeps extends ModelLifecycleDeps {
  readonly metadata: DeploymentRecords & Pick<ModelRecords, 'findModel'>
}

/** What following the store needs besides the deployments: the model's files on this server. */
export interface FollowHooks {
  /** Gets the model's files onto this server (uploaded elsewhere: fetched and unpacked). */
  readonly install: (model: Model) => Promise<void>
  /** Removes this server's files of a model deleted elsewhere. */
  readonly forget: (model: Model) => Promise<void>
}

/** What following the store did to one model here. */
export type Followed =
  | 'deployed'
  | 'redeployed'
  | 'undeployed'
  | 'removed'
  | 'adopted'
  | 'unchanged'

/**
 * What should be deployed (Triton's `ModelRepositoryManager`): deploy and undeploy requests are
 * recorded in the store as the model's desired state (and a redeploy as a new generation), then
 * carried out by the `ModelLifecycle`; `follow` brings this server in line with what the store
 * wants when another instance was asked. Requests and follows act on one model one at a time.
 */
export class DeploymentManager implements DeploymentControl, ServingLookup {
  readonly #metadata: DeploymentManagerDeps['metadata']
  readonly #lifecycle: ModelLifecycle
  /** Per model, the end of the last request or follow acting on it. */
  readonly #turns = new Map<string, Promise<void>>()

  constructor(deps: DeploymentManagerDeps, options: DeploymentManagerOptions) {
    this.#metadata = deps.metadata
    this.#lifecycle = new ModelLifecycle(deps, options)
  }

  /**
   * Brings the store's deployments in line with a server that runs nothing yet: what should be
   * deployed is admitted again, whatever was half-done is set to rest. Run once, at start.
   */
  reconcile(): Promise<void> {
    return this.#lifecycle.reconcile()
  }

  deploy(
    model: Model,
    options: DeployOptions = {},
  ): Promise<{ deployment: Deployment; cached: boolean }> {
    this.#assertOpen()
    return this.#exclusive(keyOf(model), async () => {
      const { namespaceId, modelId } = model
      // Written even when unchanged here: another instance may have written the opposite.
      await this.#metadata.setDesiredState(namespaceId, modelId, 'deployed')
      // A redeploy: every other instance serving an older generation redeploys too.
      const reload = options.reload === true
      const generation = reload
        ? await this.#metadata.bumpDeployGeneration(namespaceId, modelId)
        : undefined
      return this.#lifecycle.deploy(model, reload, generation)
    })
  }

  undeploy(model: Model): Promise<Deployment> {
    this.#assertOpen()
    return this.#exclusive(keyOf(model), async () => {
      await this.#metadata.setDesiredState(model.namespaceId, model.modelId, 'not_deployed')
      return this.#lifecycle.undeploy(model)
    })
  }

  async remove(model: Model): Promise<void> {
    await this.undeploy(model)
    this.#lifecycle.forget(model)
  }

  /** The models this server manages (anything but never touched or forgotten). */
  managed(): Model[] {
    return this.#lifecycle.managed()
  }

  /**
   * Whether this server's deployment of a model may differ from the stored desired state (`row`;
   * `undefined`: the model is not in the store). A cheap check on a listing that may be stale:
   * `follow` reads the model again before acting.
   */
  differs(key: string, row: DesiredStateRow | undefined): boolean {
    const d = this.#lifecycle.get(key)
    if (row === undefined) return d !== undefined
    const wanted = d?.record.desired ?? 'not_deployed'
    if (row.desired !== wanted) return true
    return wanted === 'deployed' && (d?.generation ?? -1) < row.generation
  }

  /**
   * Level-triggered following (as a Kubernetes controller does): reads the model's stored desired
   * state afresh and brings this server's deployment in line with it: deploys (after `install`),
   * redeploys a newer `generation`, undeploys, or forgets a model deleted elsewhere. Requests for
   * the model here wait for it, and it for them, so a stale read never undoes a newer request.
   */
  follow(
    row: DesiredStateRow | { readonly namespaceId: string; readonly modelId: string },
    hooks: FollowHooks,
  ): Promise<Followed> {
    const key = `${row.namespaceId}/${row.modelId}`
    return this.#exclusive(key, async (): Promise<Followed> => {
      if (this.#lifecycle.closed) return 'unchanged'
      const fresh = await this.#metadata.findModel(row.namespaceId, row.modelId)
      const d = this.#lifecycle.get(key)
      if (fresh === undefined) {
        if (d === undefined) return 'unchanged'
        await this.#lifecycle.undeploy(d.model)
        this.#lifecycle.forget(d.model)
        await hooks.forget(d.model)
        return 'removed'
      }
      const here = d?.record.desired ?? 'not_deployed'
      if (fresh.deployment.desired === 'not_deployed') {
        if (here !== 'deployed' || d === undefined) return 'unchanged'
        await this.#lifecycle.undeploy(d.model)
        return 'undeployed'
      }
      // The generation only grows: a stale listing can only under-report it.
      const generation = 'generation' in row ? row.generation : undefined
      if (here !== 'deployed' || d === undefined) {
        await hooks.install(fresh)
        await this.#lifecycle.deploy(fresh, false, generation)
        return 'deployed'
      }
      if (generation === undefined) return 'unchanged'
      if (d.generation === undefined) {
        // Deployed here before its generation was known (at start): these runners are current.
        d.generation = generation
        return 'adopted'
      }
      if (generation <= d.generation) return 'unchanged'
      await this.#lifecycle.deploy(fresh, true, generation)
      return 'redeployed'
    })
  }

  deploymentOf(model: Model): Deployment {
    return this.#lifecycle.deploymentOf(model)
  }

  liveModel(namespaceId: string, modelId: string): Model | undefined {
    return this.#lifecycle.liveModel(namespaceId, modelId)
  }

  liveSignature(model: Model): LoadedSignature | undefined {
    return this.#lifecycle.liveSignature(model)
  }

  replicasOf(model: Model): number {
    return this.#lifecycle.replicasOf(model)
  }

  waitUntilSettled(model: Model, timeoutMs: number): Promise<Deployment> {
    return this.#lifecycle.waitUntilSettled(model, timeoutMs)
  }

  serving(model: Model): Serving {
    return this.#lifecycle.serving(model)
  }

  /** Stops every runner (the store keeps what should be deployed, for the next start). */
  close(): Promise<void> {
    return this.#lifecycle.close()
  }

  /** Runs `work` after every earlier request or follow for the model has finished. */
  #exclusive<T>(key: string, work: () => Promise<T>): Promise<T> {
    const result = (this.#turns.get(key) ?? Promise.resolve()).then(work)
    const turn = result.then(
      () => undefined,
      () => undefined,
    )
    this.#turns.set(key, turn)
    void turn.then(() => {
      if (this.#turns.get(key) === turn) this.#turns.delete(key)
    })
    return result
  }

  #assertOpen(): void {
    this.#lifecycle.assertOpen()
  }
}

function keyOf(model: Model): string {
  return `${model.namespaceId}/${model.modelId}`
}
