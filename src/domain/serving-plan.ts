import { join } from 'node:path'
import { isConvertible } from './encoder-families.js'
import { servedOnnx, storedWeights } from './manifest.js'
import type { Model } from './model.js'

/** Which runtime a runner hosts. */
export type RunnerRuntime = 'onnx' | 'weights' | 'encoder' | 'torch'

/** Weight files to load, for the weights runtime: relative to the model folder. */
export interface WeightFiles {
  readonly source: 'safetensors' | 'pytorch'
  readonly files: readonly string[]
}

/** The one input of a task request: its texts, as a `BYTES` tensor. */
export const TEXT_INPUT = 'berth.text'
/**
 * Or its texts as token ids already (INT64): every row's ids one after another, and each row's
 * length in `TOKEN_LENGTHS_INPUT`.
 */
export const TOKEN_IDS_INPUT = 'berth.token_ids'
export const TOKEN_LENGTHS_INPUT = 'berth.token_lengths'
/** A task pipeline's answer beside its results: the tokens the model read of each text (INT64). */
export const TOKEN_COUNTS_OUTPUT = 'berth.token_counts'
/** And whether each text was longer than the model reads, and cut (BOOL). */
export const TRUNCATED_OUTPUT = 'berth.truncated'

/** A task pipeline around the model: texts in, embeddings or label scores out. */
export interface TaskSpec {
  readonly kind: 'embedding' | 'classification'
  /** sentence-transformers pooling; `mean` when the model does not say. */
  readonly pooling: 'mean' | 'cls' | 'max'
  readonly normalize: boolean
  /** The folder holding tokenizer.json (and tokenizer_config.json, config.json). */
  readonly dir: string
}

/**
 * Where a runner with no view of berth's model folders (a container on another machine) gets
 * the model: the archive, downloaded, checked and unpacked as an upload is.
 */
export interface ArchiveSource {
  /** A presigned URL, good for a short while: a credential, never logged or shown. */
  readonly url: string
  /** The archive's SHA-256, recorded at upload (hex). */
  readonly sha256: string
  /** Largest archive berth accepts: a download past it is not the model's. */
  readonly maxArchiveBytes: number
  /** The unpacking bounds of an upload. */
  readonly limits: {
    readonly maxEntries: number
    readonly maxUnpackedBytes: number
    readonly maxCompressionRatio: number
    readonly ratioGraceBytes: number
  }
}

/** What a runner loads. */
export interface LoadTarget {
  readonly path: string
  /**
   * The model's folder (`path` is in it, or is it). A runtime's errors name files by the path they
   * were given: answers show them relative to this folder, never where the server keeps it.
   */
  readonly root: string
  readonly weights?: WeightFiles
  readonly task?: TaskSpec
  /**
   * Set where the runner fetches the model instead of reading `root` (`path` and the task's
   * folder are then named as berth's folder has them, and the runner rebases them).
   */
  readonly archive?: ArchiveSource
}

/** How a model is run, or why it cannot be. */
export type ServingPlan =
  | {
      readonly runtime: RunnerRuntime
      readonly target: LoadTarget
      /** Whether inference is possible (weights alone are only loaded and served as tensors). */
      readonly runnable: boolean
    }
  | { readonly notServable: string }

/** The task pipeline a model is served with, when it has a tokenizer and a task. */
export function taskOf(model: Model): Omit<TaskSpec, 'dir'> | undefined {
  const kind = model.taskType?.toLowerCase()
  if (kind !== 'embedding' && kind !== 'classification') return undefined
  if (!model.manifest.files.some((f) => f.path === 'tokenizer.json')) return undefined
  if (!isRunnable(model)) return undefined
  const d = model.manifest.details
  const st = d.kind === 'huggingface' ? d.sentenceTransformers : null
  return {
    kind,
    pooling: st?.pooling ?? 'mean',
    normalize: st?.normalize ?? false,
  }
}

/** Whether berth can run inference on the model (deployed or not). */
export function isRunnable(model: Model): boolean {
  return (
    servedOnnx(model.manifest) !== undefined ||
    model.manifest.details.kind === 'torchscript' ||
    isConvertible(storedWeights(model.manifest)?.architecture ?? null)
  )
}

/**
 * The one place that decides what runs a model: its ONNX graph; BERT-family weights with a
 * `config.json`, converted to ONNX in the runner; other weights, loaded and checked (not run);
 * anything else is stored only. `modelDir` is where the model is installed.
 */
export function servingPlan(model: Model, modelDir: string): ServingPlan {
  const task = taskOf(model)
  const withTask = task === undefined ? {} : { task: { ...task, dir: modelDir } }
  const onnx = servedOnnx(model.manifest)
  if (onnx !== undefined) {
    return {
      runtime: 'onnx',
      target: { path: join(modelDir, onnx.primaryFile), root: modelDir, ...withTask },
      runnable: true,
    }
  }
  const d = model.manifest.details
  if (d.kind === 'torchscript') {
    return {
      runtime: 'torch',
      target: { path: join(modelDir, d.file), root: modelDir },
      runnable: true,
    }
  }
  const weights = storedWeights(model.manifest)
  if (weights !== undefined) {
    const files = { source: weights.source, files: weights.weightFiles }
    const runnable = isRunnable(model)
    return {
      runtime: runnable ? 'encoder' : 'weights',
      target: { path: modelDir, root: modelDir, weights: files, ...withTask },
      runnable,
    }
  }
  return {
    notServable: `${model.format} models of this kind (${model.manifest.details.kind}) cannot be run by this version of berth; their files are stored`,
  }
}
