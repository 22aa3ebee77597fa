import type { Model } from '../domain/model.js'
import type { Principal } from '../domain/organization.js'
import { taskOf } from '../domain/serving-plan.js'
import { BerthError, isBerthError } from '../errors/berth-error.js'
import type { InferenceService } from '../inference/inference-service.js'
import { totalTokens } from '../inference/task-requests.js'
import type { NamespaceService } from '../namespaces/namespace-service.js'
import type { ModelCatalog } from './model-catalog.js'

/** OpenAI's embeddings request, as validated at the edge. */
export interface EmbeddingsRequest {
  readonly model: string
  readonly input: string | readonly string[] | readonly number[] | readonly (readonly number[])[]
  readonly encoding_format?: 'float' | 'base64' | undefined
  readonly dimensions?: number | undefined
}

/** OpenAI's `CreateEmbeddingResponse`. */
export interface EmbeddingsAnswer {
  readonly object: 'list'
  readonly data: { object: 'embedding'; index: number; embedding: number[] | string }[]
  readonly model: string
  readonly usage: { readonly prompt_tokens: number; readonly total_tokens: number }
}

/**
 * OpenAI's `POST /v1/embeddings` on berth's embedding models. `model` is `namespace/model`
 * (a namespace id or name, then a model_id or name), or a model of the `X-Namespace` namespace,
 * or without either a model_id found in exactly one of the organization's namespaces.
 */
export class OpenAiEmbeddings {
  readonly #catalog: Pick<ModelCatalog, 'resolve'>
  readonly #namespaces: Pick<NamespaceService, 'list'>
  readonly #inference: Pick<InferenceService, 'inferTexts'>

  constructor(deps: {
    readonly catalog: Pick<ModelCatalog, 'resolve'>
    readonly namespaces: Pick<NamespaceService, 'list'>
    readonly inference: Pick<InferenceService, 'inferTexts'>
  }) {
    this.#catalog = deps.catalog
    this.#namespaces = deps.namespaces
    this.#inference = deps.inference
  }

  /**
   * Throws `model_not_found`, `infer_request_invalid` (a model id in several namespaces,
   * `dimensions` past the model's), `task_not_supported` for a model that does not embed, and
   * what the inference throws.
   */
  async create(
    principal: Principal,
    namespaceRef: string | undefined,
    request: EmbeddingsRequest,
  ): Promise<EmbeddingsAnswer> {
    const model = await this.#model(principal, namespaceRef, request.model)
    const task = taskOf(model)
    if (task?.kind !== 'embedding') {
      throw new BerthError(
        'task_not_supported',
        `model "${model.modelId}" does not embed texts: /v1/embeddings needs task_type embedding and a tokenizer.json`,
        { details: { model_id: model.modelId, task_type: model.taskType } },
      )
    }
    const input = request.input
    const texts =
      typeof input === 'string' || (input.length > 0 && typeof input[0] === 'number')
        ? [input]
        : input
    const { dimensions } = request
    const result = await this.#inference.inferTexts(
      model,
      texts,
      // A shortened embedding of a model that normalises is normalised again, as OpenAI's are.
      dimensions === undefined ? {} : { dimensions, normalize: task.normalize },
    )
    if (result.kind !== 'embedding') throw new Error('an embedding task answered labels')
    const tokens = totalTokens(result)
    return {
      object: 'list',
      data: result.embeddings.map((row, index) => ({
        object: 'embedding',
        index,
        embedding:
          request.encoding_format === 'base64'
            ? Buffer.from(Float32Array.from(row).buffer).toString('base64')
            : row,
      })),
      model: request.model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    }
  }

  async #model(
    principal: Principal,
    namespaceRef: string | undefined,
    ref: string,
  ): Promise<Model> {
    const slash = ref.indexOf('/')
    if (slash > 0) {
      return this.#catalog.resolve(principal, ref.slice(0, slash), ref.slice(slash + 1), undefined)
    }
    if (namespaceRef !== undefined) {
      return this.#catalog.resolve(principal, namespaceRef, ref, undefined)
    }
    const found: Model[] = []
    for (const namespace of await this.#namespaces.list(principal)) {
      try {
        found.push(await this.#catalog.resolve(principal, namespace.id, ref, undefined))
      } catch (err) {
        if (!isBerthError(err) || err.code !== 'model_not_found') throw err
      }
    }
    const [only] = found
    if (only !== undefined && found.length === 1) return only
    if (found.length > 1) {
      throw new BerthError(
        'infer_request_invalid',
        `model "${ref}" is in ${found.length} namespaces: name it "{namespace}/${ref}" or send X-Namespace`,
        { details: { model: ref, namespaces: found.map((m) => m.namespaceId) } },
      )
    }
    throw new BerthError('model_not_found', `model "${ref}" not found in any namespace`, {
      details: { model_id: ref },
    })
  }
}
