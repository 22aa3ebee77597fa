import type { TensorSpec } from '../tensors/tensor.js'
import type { ModelFormat } from './model-format.js'

/**
 * The runtime that serves a model, and the base image it maps to (Mixpeek's `serve-minimal` /
 * `serve-gpu` split).
 */
export type RuntimeName = 'onnx' | 'torch' | 'weights'
export type BaseImage = 'berth/runtime-minimal' | 'berth/runtime-full'

export interface ManifestFile {
  /** Path inside the archive, after the wrapping folder was stripped. */
  readonly path: string
  readonly sizeBytes: number
  readonly sha256: string
}

export interface OnnxDetails {
  readonly kind: 'onnx'
  readonly primaryFile: string
  readonly irVersion: number
  readonly opsets: Readonly<Record<string, number>>
  readonly producer: string | null
  readonly externalDataFiles: readonly string[]
  readonly inputs: readonly TensorSpec[]
  readonly outputs: readonly TensorSpec[]
}

/** Weights without a graph: safetensors files or a PyTorch state_dict. */
export interface WeightsDetails {
  readonly kind: 'weights'
  readonly source: 'safetensors' | 'pytorch'
  /** The weight files, in the order their tensors were read. */
  readonly weightFiles: readonly string[]
  readonly tensorCount: number
  readonly parameterCount: number
  /** How many tensors have each dtype (safetensors dtype names). */
  readonly dtypes: Readonly<Record<string, number>>
  /** `config.json`'s `model_type`, when the archive has one. */
  readonly architecture: string | null
}

/** A TorchScript module: recognised by its zip layout, served by the torch runner. */
export interface TorchScriptDetails {
  readonly kind: 'torchscript'
  readonly file: string
}

/** sentence-transformers pooling, from `modules.json` and the Pooling module's config. */
export interface SentenceTransformersInfo {
  /** Module types in order, e.g. `sentence_transformers.models.Transformer`. */
  readonly modules: readonly string[]
  readonly pooling: 'mean' | 'cls' | 'max' | null
  readonly normalize: boolean
}

/** A HuggingFace model directory: its config, weights, tokenizer and pipeline pieces. */
export interface HuggingFaceDetails {
  readonly kind: 'huggingface'
  readonly modelType: string | null
  readonly architectures: readonly string[]
  readonly weights: OnnxDetails | WeightsDetails
  readonly tokenizerFiles: readonly string[]
  readonly sentenceTransformers: SentenceTransformersInfo | null
}

/**
 * What validation learned about an archive: its files, the format details, and how berth will
 * serve it. Stored with the model and shown by GET.
 */
export interface Manifest {
  readonly format: ModelFormat
  readonly files: readonly ManifestFile[]
  readonly totalBytes: number
  readonly runtime: RuntimeName
  readonly baseImage: BaseImage
  readonly details: OnnxDetails | WeightsDetails | TorchScriptDetails | HuggingFaceDetails
}

/** The ONNX graph a model is served from, when it has one. */
export function servedOnnx(manifest: Manifest): OnnxDetails | undefined {
  const d = manifest.details
  if (d.kind === 'onnx') return d
  if (d.kind === 'huggingface' && d.weights.kind === 'onnx') return d.weights
  return undefined
}

/** The weight files a model holds (safetensors or a state_dict), when it has them. */
export function storedWeights(manifest: Manifest): WeightsDetails | undefined {
  const d = manifest.details
  if (d.kind === 'weights') return d
  if (d.kind === 'huggingface' && d.weights.kind === 'weights') return d.weights
  return undefined
}
