import type {
  HuggingFaceDetails,
  ManifestFile,
  SentenceTransformersInfo,
} from '../../domain/manifest.js'
import { BerthError } from '../../errors/berth-error.js'
import { describeOnnx } from '../onnx/describe-onnx.js'
import { describePytorch } from '../pytorch/describe-pytorch.js'
import { describeSafetensors } from '../safetensors/describe-safetensors.js'
import { type HfConfig, readArchiveJson } from './hf-config.js'

/** Files a tokenizer may consist of, whichever tokenizer class wrote them. */
const TOKENIZER_FILES = new Set([
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.txt',
  'vocab.json',
  'merges.txt',
  'sentencepiece.bpe.model',
  'spiece.model',
  'tokenizer.model',
  'added_tokens.json',
])
const SAFETENSORS_WEIGHTS = /^model(-\d{5}-of-\d{5})?\.safetensors$/
const PYTORCH_WEIGHTS = /^pytorch_model(-\d{5}-of-\d{5})?\.bin$/
const MAX_JSON_BYTES = 1024 * 1024

/**
 * A HuggingFace model directory (`save_pretrained` layout): `config.json` at the root, weights
 * as `onnx/model.onnx`, `model.onnx`, `model*.safetensors` or `pytorch_model*.bin` (the first
 * present wins; every present family is checked), tokenizer files, and the sentence-transformers
 * modules when there are any.
 */
export async function describeHuggingFace(
  root: string,
  files: readonly ManifestFile[],
  config: HfConfig,
): Promise<HuggingFaceDetails> {
  const paths = files.map((f) => f.path)
  const safetensors = paths.filter((p) => SAFETENSORS_WEIGHTS.test(p))
  const pytorch = paths.filter((p) => PYTORCH_WEIGHTS.test(p))
  const onnx = ['onnx/model.onnx', 'model.onnx'].find((p) => paths.includes(p))

  // Check every weight family present, so nothing unsafe sits in the store unnoticed.
  const fromSafetensors =
    safetensors.length > 0
      ? await describeSafetensors(root, safetensors, files, config.modelType)
      : undefined
  const fromPytorch =
    pytorch.length > 0 ? await describePytorch(root, pytorch, config.modelType) : undefined
  if (fromPytorch?.kind === 'torchscript') {
    throw mismatch(`${fromPytorch.file} is TorchScript, not a state_dict`)
  }
  const weights =
    onnx !== undefined ? await describeOnnx(root, onnx, files) : (fromSafetensors ?? fromPytorch)
  if (weights === undefined) {
    throw mismatch('it has no onnx/model.onnx, model.onnx, model.safetensors or pytorch_model.bin')
  }
  return {
    kind: 'huggingface',
    modelType: config.modelType,
    architectures: config.architectures,
    weights,
    tokenizerFiles: paths.filter((p) => TOKENIZER_FILES.has(p)),
    sentenceTransformers: await readSentenceTransformers(root, files),
  }
}

/** `modules.json` and its Pooling / Normalize modules, if the directory has them. */
async function readSentenceTransformers(
  root: string,
  files: readonly ManifestFile[],
): Promise<SentenceTransformersInfo | null> {
  const modules = await readJson(root, files, 'modules.json')
  if (modules === undefined) return null
  if (!Array.isArray(modules)) throw invalidModules('modules.json is not a list')
  const types: string[] = []
  let pooling: SentenceTransformersInfo['pooling'] = null
  for (const module of modules as unknown[]) {
    const { type, path } = (module ?? {}) as { type?: unknown; path?: unknown }
    if (typeof type !== 'string' || typeof path !== 'string') {
      throw invalidModules('a module in modules.json lacks its type or path')
    }
    types.push(type)
    if (type.endsWith('.Pooling')) {
      const configPath = path === '' ? 'config.json' : `${path.replace(/\/+$/, '')}/config.json`
      const poolingConfig = (await readJson(root, files, configPath)) as
        | Record<string, unknown>
        | undefined
      if (poolingConfig === undefined) throw invalidModules(`${configPath} is missing`)
      pooling = poolingConfig.pooling_mode_cls_token
        ? 'cls'
        : poolingConfig.pooling_mode_max_tokens
          ? 'max'
          : 'mean'
    }
  }
  return { modules: types, pooling, normalize: types.some((t) => t.endsWith('.Normalize')) }
}

function readJson(root: string, files: readonly ManifestFile[], path: string): Promise<unknown> {
  return readArchiveJson(root, files, path, MAX_JSON_BYTES, (reason) =>
    invalidModules(`${path} ${reason}`),
  )
}

function invalidModules(reason: string): BerthError {
  return new BerthError('huggingface_config_invalid', `sentence-transformers modules: ${reason}`, {
    details: { reason },
  })
}

function mismatch(reason: string): BerthError {
  return new BerthError('model_format_mismatch', `not a huggingface model directory: ${reason}`, {
    details: { model_format: 'huggingface' },
  })
}
