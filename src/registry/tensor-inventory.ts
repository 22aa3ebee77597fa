import type { Readable } from 'node:stream'
import { storedWeights } from '../domain/manifest.js'
import type { Model } from '../domain/model.js'
import type { Principal } from '../domain/organization.js'
import { BerthError } from '../errors/berth-error.js'
import { openWeights, type WeightsReader, type WeightTensor } from '../formats/weights-reader.js'
import type { InstalledModels } from './installed-models.js'
import type { ModelCatalog } from './model-catalog.js'

export interface TensorInventoryDeps {
  readonly catalog: Pick<ModelCatalog, 'get'>
  readonly installed: Pick<InstalledModels, 'dirOf'>
}

/**
 * The tensors of models stored as weights (safetensors, state_dict, Hugging Face), read from
 * this server's installed files: the inventory, and one tensor's bytes.
 */
export class TensorInventory {
  readonly #deps: TensorInventoryDeps

  constructor(deps: TensorInventoryDeps) {
    this.#deps = deps
  }

  /**
   * The model's tensors (weights formats only): names, dtypes, shapes. Throws `model_not_found`,
   * `model_has_no_tensors` for a model stored as a graph (ONNX, TorchScript).
   */
  async tensors(
    principal: Principal,
    namespaceRef: string,
    modelId: string,
  ): Promise<{ model: Model; tensors: readonly WeightTensor[] }> {
    const model = await this.#deps.catalog.get(principal, namespaceRef, modelId)
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
   * `model_not_found`, `model_has_no_tensors`, `tensor_not_found`.
   */
  async tensorBytes(
    principal: Principal,
    namespaceRef: string,
    modelId: string,
    name: string,
  ): Promise<{ tensor: WeightTensor; stream: Readable }> {
    const model = await this.#deps.catalog.get(principal, namespaceRef, modelId)
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
    return openWeights(this.#deps.installed.dirOf(model), {
      source: weights.source,
      files: weights.weightFiles,
    })
  }
}
