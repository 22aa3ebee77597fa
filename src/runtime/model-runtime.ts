import type { WeightFiles } from '../domain/serving-plan.js'
import type { TensorSpec, WireTensor } from '../tensors/tensor.js'

export interface LoadOptions {
  /** Threads for one inference (ONNX Runtime's intra-op pool); at least 1. */
  readonly intraOpThreads: number
  /** For the weights runtime: the files under the model folder that hold the tensors. */
  readonly weights?: WeightFiles
}

/**
 * A model loaded in a runner process. `infer` is never called concurrently on one instance;
 * scale-out is more runner processes.
 */
export interface LoadedModel {
  readonly inputs: readonly TensorSpec[]
  readonly outputs: readonly TensorSpec[]
  /**
   * Runs the model. `outputs` names the outputs wanted (`null`: all). Throws `inference_failed`
   * with the runtime's message when the model rejects the values.
   */
  infer(inputs: readonly WireTensor[], outputs: readonly string[] | null): Promise<WireTensor[]>
  /** Frees the model. Idempotent. */
  unload(): Promise<void>
}

/**
 * A way to run models of one kind, used inside runner processes only (never on the HTTP event
 * loop). Throws `model_load_failed` when the runtime refuses the model.
 */
export interface ModelRuntime {
  load(modelPath: string, options: LoadOptions): Promise<LoadedModel>
}
