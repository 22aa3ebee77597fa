import { readFile, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { Tokenizer } from '@huggingface/tokenizers'
import {
  type TaskSpec,
  TEXT_INPUT,
  TOKEN_COUNTS_OUTPUT,
  TOKEN_IDS_INPUT,
  TOKEN_LENGTHS_INPUT,
  TRUNCATED_OUTPUT,
} from '../domain/serving-plan.js'
import { BerthError } from '../errors/berth-error.js'
import type { WireTensor } from '../tensors/tensor.js'
import { decodeStrings, encodeStrings, int64Values } from '../tensors/tensor-data.js'
import type { LoadedModel } from './model-runtime.js'

/** Largest tokenizer file read. */
const MAX_TOKENIZER_BYTES = 64 * 1024 * 1024
/** Sequence length used when neither the tokenizer nor the config says. */
const DEFAULT_MAX_LENGTH = 512

/**
 * A model with a tokenizer and a task: texts in, embeddings or label scores out.
 * Requests whose only input is `TEXT_INPUT` are tokenized (truncated to the model's maximum
 * length, padded to the longest in the batch), run as one batch, and pooled (embedding: mean,
 * CLS or max over real tokens, then L2-normalised when configured) or soft-maxed
 * (classification). Every other request goes to the model unchanged.
 */
export async function withTask(base: LoadedModel, task: TaskSpec): Promise<LoadedModel> {
  const tokenizerJson = await readJson(join(task.dir, 'tokenizer.json'), true)
  const tokenizerConfig = (await readJson(join(task.dir, 'tokenizer_config.json'), false)) ?? {}
  const config = (await readJson(join(task.dir, 'config.json'), false)) ?? {}
  let tokenizer: Tokenizer
  try {
    tokenizer = new Tokenizer(tokenizerJson as object, tokenizerConfig as object)
  } catch (err) {
    throw new BerthError('model_load_failed', `tokenizer.json cannot be used: ${String(err)}`, {
      cause: err,
    })
  }
  const maxLength = maxLengthOf(config, tokenizerConfig)
  const padId = padIdOf(config, tokenizerConfig, tokenizer)
  const inputNames = base.inputs.map((i) => i.name)
  const known = new Set(['input_ids', 'attention_mask', 'token_type_ids'])
  const unknown = inputNames.filter((n) => !known.has(n))
  if (!inputNames.includes('input_ids') || unknown.length > 0) {
    throw new BerthError(
      'model_load_failed',
      `a ${task.kind} pipeline needs a model taking input_ids (and attention_mask, token_type_ids); this one takes ${inputNames.join(', ')}`,
    )
  }
  const labels = task.kind === 'classification' ? labelsOf(config) : []
  // Token ids from a client are checked against it: the embedding table has no row past it.
  const vocabSize =
    typeof config.vocab_size === 'number' && config.vocab_size > 0
      ? config.vocab_size
      : (tokenizer.model?.vocab.length ?? Number.POSITIVE_INFINITY)

  /** Token ids (and type ids) per text, as the tokenizer or the client gave them. */
  const run = async (
    rows: readonly { readonly ids: readonly number[]; readonly types: readonly number[] }[],
  ): Promise<WireTensor[]> => {
    const truncated = Uint8Array.from(rows, (row) => (row.ids.length > maxLength ? 1 : 0))
    const encoded = rows.map((row) => truncate(row.ids, row.types, maxLength))
    const batch = encoded.length
    // What the model read of each text, and whether it was cut: usage counts and `truncate: false`.
    const usage: WireTensor[] = [
      {
        name: TOKEN_COUNTS_OUTPUT,
        datatype: 'INT64',
        shape: [batch],
        data: new Uint8Array(BigInt64Array.from(encoded, (e) => BigInt(e.ids.length)).buffer),
      },
      { name: TRUNCATED_OUTPUT, datatype: 'BOOL', shape: [batch], data: truncated },
    ]
    const length = Math.max(1, ...encoded.map((e) => e.ids.length))
    const ids = new BigInt64Array(batch * length).fill(BigInt(padId))
    const mask = new BigInt64Array(batch * length)
    const types = new BigInt64Array(batch * length)
    encoded.forEach((e, row) => {
      e.ids.forEach((id, i) => {
        ids[row * length + i] = BigInt(id)
        mask[row * length + i] = 1n
        types[row * length + i] = BigInt(e.types[i] ?? 0)
      })
    })
    const tensor = (name: string, data: BigInt64Array): WireTensor => ({
      name,
      datatype: 'INT64',
      shape: [batch, length],
      data: new Uint8Array(data.buffer),
    })
    const feeds = inputNames.map((name) =>
      tensor(name, name === 'input_ids' ? ids : name === 'attention_mask' ? mask : types),
    )
    const outputs = await base.infer(feeds, null)
    if (task.kind === 'classification') {
      const logits = pick(outputs, ['logits'], 2)
      const count = logits.shape[1] ?? 0
      const scores = softmax(floats(logits), batch, count)
      const names = Array.from({ length: count }, (_, i) => labels[i] ?? `LABEL_${i}`)
      return [
        { name: 'scores', datatype: 'FP32', shape: [batch, count], data: bytesOf(scores) },
        { name: 'labels', datatype: 'BYTES', shape: [count], data: encodeStrings(names) },
        ...usage,
      ]
    }
    const pooledOut = outputs.find((o) => o.name === 'sentence_embedding' && o.shape.length === 2)
    let embeddings: Float32Array
    let dimensions: number
    if (pooledOut !== undefined) {
      embeddings = floats(pooledOut)
      dimensions = pooledOut.shape[1] ?? 0
    } else {
      const hidden = pick(outputs, ['last_hidden_state', 'token_embeddings'], 3)
      dimensions = hidden.shape[2] ?? 0
      embeddings = pool(floats(hidden), mask, batch, hidden.shape[1] ?? 0, dimensions, task.pooling)
    }
    if (task.normalize) normalize(embeddings, batch, dimensions)
    return [
      {
        name: 'embeddings',
        datatype: 'FP32',
        shape: [batch, dimensions],
        data: bytesOf(embeddings),
      },
      ...usage,
    ]
  }

  return {
    inputs: base.inputs,
    outputs: base.outputs,
    infer: async (inputs, outputs) => {
      const [first, second] = inputs
      if (inputs.length === 2 && first?.name === TOKEN_IDS_INPUT) {
        return run(tokenRows(first, second, vocabSize))
      }
      if (inputs.length !== 1 || first?.name !== TEXT_INPUT) return base.infer(inputs, outputs)
      const texts = first.datatype === 'BYTES' ? decodeStrings(first.data) : undefined
      if (texts === undefined)
        throw new BerthError('inference_failed', 'the texts are not well framed')
      return run(
        texts.map((text) => {
          const e = tokenizer.encode(text, { return_token_type_ids: true })
          return { ids: e.ids, types: e.token_type_ids ?? [] }
        }),
      )
    },
    unload: () => base.unload(),
  }
}

/**
 * The rows of a token request: `TOKEN_IDS_INPUT` holds every row's ids one after another,
 * `TOKEN_LENGTHS_INPUT` each row's length (both INT64). Throws `inference_failed` when they do
 * not add up, or for an id outside the vocabulary.
 */
function tokenRows(ids: WireTensor, lengths: WireTensor | undefined, vocabSize: number) {
  const flat = int64Values(ids)
  const counts = lengths?.name === TOKEN_LENGTHS_INPUT ? int64Values(lengths) : undefined
  const total = counts?.reduce((sum, n) => sum + n, 0n)
  if (counts === undefined || counts.some((n) => n < 0n) || total !== BigInt(flat.length)) {
    throw new BerthError('inference_failed', 'the token rows are not well framed')
  }
  const past = flat.find((id) => id < 0n || Number(id) >= vocabSize)
  if (past !== undefined) {
    throw new BerthError(
      'inference_failed',
      `token id ${past} is outside the model's vocabulary of ${vocabSize} ids`,
    )
  }
  let at = 0
  return Array.from(counts, (count) => {
    const row = Array.from(flat.subarray(at, at + Number(count)), Number)
    at += Number(count)
    return { ids: row, types: row.map(() => 0) }
  })
}

function truncate(ids: readonly number[], types: readonly number[], max: number) {
  if (ids.length <= max) return { ids: [...ids], types: [...types] }
  // Keep the closing special token ([SEP], </s>) the template put last.
  return {
    ids: [...ids.slice(0, max - 1), ids[ids.length - 1] as number],
    types: [...types.slice(0, max - 1), types[types.length - 1] ?? 0],
  }
}

function maxLengthOf(config: Record<string, unknown>, tokenizerConfig: Record<string, unknown>) {
  const limits: number[] = []
  const fromTokenizer = tokenizerConfig.model_max_length
  // Tokenizers without a limit say so with a huge sentinel (1e30).
  if (typeof fromTokenizer === 'number' && fromTokenizer > 0 && fromTokenizer < 1e6) {
    limits.push(fromTokenizer)
  }
  const positions = config.max_position_embeddings
  if (typeof positions === 'number' && positions > 0) {
    // RoBERTa-style positions start after the padding index.
    const offset = config.model_type === 'roberta' || config.model_type === 'xlm-roberta' ? 2 : 0
    limits.push(positions - offset)
  }
  return Math.max(2, Math.min(...limits, limits.length === 0 ? DEFAULT_MAX_LENGTH : Infinity))
}

function padIdOf(
  config: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
  tokenizer: Tokenizer,
): number {
  if (Number.isSafeInteger(config.pad_token_id)) return config.pad_token_id as number
  const token = tokenizerConfig.pad_token
  const name = typeof token === 'string' ? token : '[PAD]'
  return tokenizer.token_to_id(name) ?? 0
}

function labelsOf(config: Record<string, unknown>): string[] {
  const map = config.id2label
  if (typeof map !== 'object' || map === null) return []
  const labels: string[] = []
  for (const [index, label] of Object.entries(map)) {
    const i = Number(index)
    if (Number.isSafeInteger(i) && i >= 0 && typeof label === 'string') labels[i] = label
  }
  return labels
}

function pick(outputs: readonly WireTensor[], names: readonly string[], rank: number): WireTensor {
  const found =
    outputs.find((o) => names.includes(o.name) && o.shape.length === rank) ??
    outputs.find((o) => o.shape.length === rank && o.datatype === 'FP32')
  if (found === undefined) {
    throw new BerthError(
      'inference_failed',
      `the model has no rank-${rank} FP32 output (${names.join(' or ')}) for this task`,
    )
  }
  return found
}

function floats(t: WireTensor): Float32Array {
  const copy = Uint8Array.prototype.slice.call(t.data)
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4)
}

function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
}

/** Pools token vectors [B, S, D] over the tokens the mask marks real. */
function pool(
  hidden: Float32Array,
  mask: BigInt64Array,
  batch: number,
  length: number,
  dims: number,
  mode: TaskSpec['pooling'],
): Float32Array {
  const out = new Float32Array(batch * dims)
  for (let b = 0; b < batch; b++) {
    if (mode === 'cls') {
      out.set(hidden.subarray(b * length * dims, b * length * dims + dims), b * dims)
      continue
    }
    let count = 0
    if (mode === 'max') out.fill(Number.NEGATIVE_INFINITY, b * dims, (b + 1) * dims)
    for (let s = 0; s < length; s++) {
      if (mask[b * length + s] === 0n) continue
      count += 1
      const row = (b * length + s) * dims
      for (let d = 0; d < dims; d++) {
        const v = hidden[row + d] as number
        const at = b * dims + d
        out[at] = mode === 'max' ? Math.max(out[at] as number, v) : (out[at] as number) + v
      }
    }
    if (mode === 'mean') {
      const divisor = Math.max(count, 1e-9)
      for (let d = 0; d < dims; d++) out[b * dims + d] = (out[b * dims + d] as number) / divisor
    }
  }
  return out
}

function normalize(values: Float32Array, rows: number, dims: number): void {
  for (let r = 0; r < rows; r++) {
    let sum = 0
    for (let d = 0; d < dims; d++) sum += (values[r * dims + d] as number) ** 2
    const norm = Math.max(Math.sqrt(sum), 1e-12)
    for (let d = 0; d < dims; d++) values[r * dims + d] = (values[r * dims + d] as number) / norm
  }
}

function softmax(logits: Float32Array, rows: number, count: number): Float32Array {
  const out = new Float32Array(rows * count)
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * count, (r + 1) * count)
    const max = Math.max(...row)
    let sum = 0
    for (let i = 0; i < count; i++) {
      const e = Math.exp((row[i] as number) - max)
      out[r * count + i] = e
      sum += e
    }
    for (let i = 0; i < count; i++) out[r * count + i] = (out[r * count + i] as number) / sum
  }
  return out
}

async function readJson(path: string, required: true): Promise<Record<string, unknown>>
async function readJson(path: string, required: false): Promise<Record<string, unknown> | undefined>
async function readJson(path: string, required: boolean) {
  const info = await stat(path).catch(() => undefined)
  if (info === undefined || !info.isFile()) {
    if (!required) return undefined
    throw new BerthError('model_load_failed', `the model has no ${basename(path)}`)
  }
  if (info.size > MAX_TOKENIZER_BYTES) {
    throw new BerthError('model_load_failed', `${basename(path)} is too large`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'))
  } catch {
    throw new BerthError('model_load_failed', `${basename(path)} is not JSON`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new BerthError('model_load_failed', `${basename(path)} is not a JSON object`)
  }
  return parsed as Record<string, unknown>
}
