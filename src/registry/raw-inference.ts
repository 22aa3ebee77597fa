import type { Model } from '../domain/model.js'
import type { Principal } from '../domain/organization.js'
import { BerthError } from '../errors/berth-error.js'
import type { InferenceService } from '../inference/inference-service.js'
import {
  taskParametersOf,
  tensorDataJson,
  tensorRequest,
  textsOf,
} from '../inference/raw-inputs.js'
import { type TaskResult, totalTokens } from '../inference/task-requests.js'
import type { ModelCatalog } from './model-catalog.js'

/** Mixpeek's raw inference request, as validated at the edge. */
export interface RawInferenceRequest {
  readonly provider?: string | null | undefined
  readonly model?: string | null | undefined
  readonly inference_name?: string | null | undefined
  readonly feature_uri?: string | null | undefined
  readonly inputs: Readonly<Record<string, unknown>>
  readonly parameters?: Readonly<Record<string, unknown>> | null | undefined
}

/**
 * Mixpeek's raw inference response, its `data` already JSON text (tensors are written as `/v2`
 * writes them, so 64-bit integers stay exact): `rawInferenceJson` makes the body.
 */
export interface RawInferenceAnswer {
  readonly dataJson: string
  readonly model: string
  readonly latencyMs: number
  readonly tokensUsed: { readonly prompt: number; readonly total: number } | null
}

/** The answer as Mixpeek's `RawInferenceResponse`, JSON text. */
export function rawInferenceJson(answer: RawInferenceAnswer): string {
  const rest = JSON.stringify({
    provider: 'berth',
    model: answer.model,
    latency_ms: answer.latencyMs,
    cached: false,
    tokens_used: answer.tokensUsed,
  })
  return `{"data":${answer.dataJson},${rest.slice(1)}`
}

/** `mixpeek://{name}@{version}/{output}`; the version may carry a leading `v`. */
const FEATURE_URI = /^mixpeek:\/\/([^@/]+)@v?([^/@]+)\/([^/]+)$/

/**
 * `POST /v1/inference`: a model of the namespace named by `inference_name` (its `model_id`, or
 * its name for the highest deployed version) or by `feature_uri`, run on Mixpeek's `inputs`:
 * texts through its task pipeline, or tensors. An on-demand model is loaded by the request.
 */
export class RawInference {
  readonly #catalog: Pick<ModelCatalog, 'resolve'>
  readonly #inference: Pick<InferenceService, 'infer' | 'inferTexts' | 'signatureOf'>

  constructor(deps: {
    readonly catalog: Pick<ModelCatalog, 'resolve'>
    readonly inference: Pick<InferenceService, 'infer' | 'inferTexts' | 'signatureOf'>
  }) {
    this.#catalog = deps.catalog
    this.#inference = deps.inference
  }

  /**
   * Throws `provider_not_supported` for an external provider, `infer_request_invalid` for a
   * request naming no model or a malformed `feature_uri`, `model_not_found`, and what the
   * inference throws (`task_not_supported` for texts to a model without a task pipeline).
   */
  async run(
    principal: Principal,
    namespaceRef: string,
    request: RawInferenceRequest,
  ): Promise<RawInferenceAnswer> {
    const started = performance.now()
    const { model, output } = await this.#target(principal, namespaceRef, request)
    const text = textsOf(request.inputs)
    let dataJson: string
    let tokensUsed: RawInferenceAnswer['tokensUsed'] = null
    if (text !== undefined) {
      const parameters = taskParametersOf(request.parameters)
      const result = await this.#inference.inferTexts(model, text.texts, parameters)
      const rows = taskRows(result)
      dataJson = JSON.stringify(text.single ? rows[0] : rows)
      const prompt = totalTokens(result)
      tokensUsed = { prompt, total: prompt }
    } else {
      const signature = this.#inference.signatureOf(model)
      // A feature_uri's last part is an output of a tensor model; of a task model (one result:
      // the vector, or the scores) it names its index in Mixpeek, not an output to choose.
      const chosen = signature?.outputs.some((o) => o.name === output) ? output : undefined
      const outputs = await this.#inference.infer(
        model,
        tensorRequest(signature, request.inputs, chosen),
      )
      dataJson = tensorDataJson(outputs)
    }
    return {
      dataJson,
      model: model.modelId,
      latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
      tokensUsed,
    }
  }

  async #target(
    principal: Principal,
    namespaceRef: string,
    request: RawInferenceRequest,
  ): Promise<{ model: Model; output: string | undefined }> {
    const name = request.inference_name ?? undefined
    const uri = request.feature_uri ?? undefined
    if (name === undefined && uri === undefined) {
      if (request.provider != null || request.model != null) {
        throw new BerthError(
          'provider_not_supported',
          `berth runs the models uploaded to it, not external providers (provider "${request.provider ?? ''}", model "${request.model ?? ''}"): name an uploaded model with "inference_name" (its model_id) or "feature_uri"`,
          { details: { provider: request.provider ?? null, model: request.model ?? null } },
        )
      }
      throw new BerthError(
        'infer_request_invalid',
        'name the model: "inference_name" (a model_id) or "feature_uri" (mixpeek://{name}@{version}/{output})',
      )
    }
    if (name !== undefined) {
      return {
        model: await this.#catalog.resolve(principal, namespaceRef, name, undefined),
        output: undefined,
      }
    }
    const match = FEATURE_URI.exec(uri ?? '')
    if (match === null) {
      throw new BerthError(
        'infer_request_invalid',
        `feature_uri "${uri}" is not mixpeek://{name}@{version}/{output}`,
      )
    }
    const [, modelName, version, output] = match as unknown as [string, string, string, string]
    const model = await this.#catalog.resolve(principal, namespaceRef, modelName, version)
    return { model, output }
  }
}

/** One row per text: the embedding, or the labels with scores (best first). */
function taskRows(result: TaskResult): unknown[] {
  return result.kind === 'embedding' ? result.embeddings : result.predictions
}
