import type { Model } from '../domain/model.js'
import { type RunnerRuntime, servingPlan } from '../domain/serving-plan.js'
import type { DeclaredDatatype, Signature, TensorSpec } from '../tensors/tensor.js'

/**
 * A model's serving as Triton's model configuration says it (`GET /v2/models/{m}/config`): what
 * Triton clients (perf_analyzer, model-analyzer) read to shape their requests. Built from the
 * model's signature and its serving settings; nothing here is stored.
 */

/** Batchable: every input and output has a named (dynamic) first dimension. */
export function batchable(signature: Signature): boolean {
  const dynamicFirst = (shape: readonly (number | string)[]) =>
    shape.length > 0 && typeof shape[0] === 'string' && shape[0] !== '*'
  return (
    signature.inputs.every((t) => dynamicFirst(t.shape)) &&
    signature.outputs.every((t) => dynamicFirst(t.shape))
  )
}

const PLATFORMS: Readonly<Record<RunnerRuntime, string>> = {
  onnx: 'onnxruntime_onnx',
  encoder: 'onnxruntime_onnx',
  torch: 'pytorch_libtorch',
  weights: 'berth_weights',
}

/** The Open Inference Protocol `platform` of the model (Triton's names where they exist). */
export function platformOf(model: Model): string {
  const plan = servingPlan(model, '')
  if ('notServable' in plan) return 'berth_stored'
  return PLATFORMS[plan.runtime]
}

/** Triton's `data_type` names; `BYTES` is `TYPE_STRING` in a model configuration. */
const TRITON_TYPES: Readonly<Record<string, string>> = {
  BOOL: 'TYPE_BOOL',
  UINT8: 'TYPE_UINT8',
  UINT16: 'TYPE_UINT16',
  UINT32: 'TYPE_UINT32',
  UINT64: 'TYPE_UINT64',
  INT8: 'TYPE_INT8',
  INT16: 'TYPE_INT16',
  INT32: 'TYPE_INT32',
  INT64: 'TYPE_INT64',
  FP16: 'TYPE_FP16',
  FP32: 'TYPE_FP32',
  FP64: 'TYPE_FP64',
  BF16: 'TYPE_BF16',
  BYTES: 'TYPE_STRING',
}

/** Triton's backend for a platform berth reports; berth's own runtimes are `berth`. */
const BACKENDS: Readonly<Record<string, string>> = {
  onnxruntime_onnx: 'onnxruntime',
  pytorch_libtorch: 'pytorch',
}

/** One input or output of a model configuration. */
export interface ConfigTensor {
  readonly name: string
  readonly data_type: string
  readonly dims: number[]
}

/** The fields of Triton's model configuration that berth has an answer for. */
export interface TritonModelConfig {
  readonly name: string
  readonly platform: string
  readonly backend: string
  readonly max_batch_size: number
  readonly input: ConfigTensor[]
  readonly output: ConfigTensor[]
  readonly instance_group: Array<{
    readonly name: string
    readonly kind: 'KIND_CPU' | 'KIND_GPU'
    readonly count: number
  }>
  readonly dynamic_batching?: { readonly max_queue_delay_microseconds: number }
}

/**
 * The model's configuration as Triton writes it. `maxBatchSize` is how many rows berth batches
 * the model's requests up to, 0 when it does not batch them (see `InferenceService.maxBatchSizeOf`):
 * with a batch, `dims` leave out the first (batch) dimension, as Triton's do, and
 * `dynamic_batching` carries the queue delay. Dynamic dims are -1; a datatype without a Triton
 * name (`ANY` of TorchScript) is `TYPE_INVALID`, as Triton says of a type it does not know.
 */
export function tritonModelConfig(
  model: Model,
  serving: {
    readonly signature: Signature | undefined
    readonly platform: string
    readonly maxBatchSize: number
  },
): TritonModelConfig {
  const { signature, platform, maxBatchSize } = serving
  const tensor = (spec: TensorSpec): ConfigTensor => ({
    name: spec.name,
    data_type: tritonType(spec.datatype),
    dims: (maxBatchSize > 0 ? spec.shape.slice(1) : spec.shape).map((d) =>
      typeof d === 'number' ? d : -1,
    ),
  })
  return {
    name: model.name,
    platform,
    backend: BACKENDS[platform] ?? 'berth',
    max_batch_size: maxBatchSize,
    input: (signature?.inputs ?? []).map(tensor),
    output: (signature?.outputs ?? []).map(tensor),
    instance_group: [
      {
        name: model.name,
        kind: model.resources.numGpus > 0 ? 'KIND_GPU' : 'KIND_CPU',
        count: model.serving.replicas,
      },
    ],
    ...(maxBatchSize > 0
      ? { dynamic_batching: { max_queue_delay_microseconds: model.serving.maxQueueDelayUs } }
      : {}),
  }
}

function tritonType(datatype: DeclaredDatatype): string {
  return Object.hasOwn(TRITON_TYPES, datatype) ? (TRITON_TYPES[datatype] as string) : 'TYPE_INVALID'
}
