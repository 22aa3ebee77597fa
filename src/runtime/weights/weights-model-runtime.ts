import { BerthError } from '../../errors/berth-error.js'
import { openWeights } from '../../formats/weights-reader.js'
import type { LoadedModel, LoadOptions, ModelRuntime } from '../model-runtime.js'

/**
 * Weights without a graph (safetensors, PyTorch state_dicts): loading reads every tensor into
 * memory and checks its size against its header, so a deployment proves the weights are whole
 * (and its `memory_gb` covers them). There is nothing to run.
 */
export class WeightsModelRuntime implements ModelRuntime {
  async load(modelDir: string, options: LoadOptions): Promise<LoadedModel> {
    const files = options.weights
    if (files === undefined) {
      throw new BerthError('model_load_failed', 'no weight files were named to load')
    }
    const reader = await openWeights(modelDir, files).catch((err: unknown) => {
      throw new BerthError('model_load_failed', `the weights cannot be read: ${String(err)}`, {
        cause: err,
      })
    })
    let held: Buffer[] | undefined = []
    try {
      for (const tensor of reader.tensors) held.push(await reader.bytes(tensor.name))
    } finally {
      reader.close()
    }
    return {
      inputs: [],
      outputs: [],
      infer: async () => {
        throw new BerthError('model_not_servable', 'weights without a graph cannot be run')
      },
      unload: async () => {
        held = undefined
      },
    }
  }
}
