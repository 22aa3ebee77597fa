import {
  CONVERTIBLE_FAMILIES,
  type EncoderFamily,
  isConvertible,
} from '../domain/encoder-families.js'
import { BerthError } from '../errors/berth-error.js'
import type { WeightsReader } from '../formats/weights-reader.js'
import { fromHalf } from '../tensors/tensor-data.js'
import { FLOAT, GraphBuilder, INT64 } from './graph-builder.js'

/**
 * Transformer encoders (HuggingFace `config.json` + weights with HF parameter names) → an ONNX
 * graph served by ONNX Runtime, so BERT-family checkpoints run without torch. The graph is the
 * model's forward pass written out op by op (opset 17): embeddings, additive attention mask,
 * per layer self-attention + feed-forward with post-LayerNorm, and the pooler where the
 * checkpoint has one.
 */

/** What the graph needs from `config.json`, whatever the family calls it. */
export interface EncoderConfig {
  readonly family: EncoderFamily
  readonly hidden: number
  readonly heads: number
  readonly layers: number
  readonly eps: number
  readonly activation: 'gelu' | 'gelu_tanh' | 'relu'
  /** RoBERTa's positions start after the padding index. */
  readonly padTokenId: number
}

/** Parameter names per family, relative to the model prefix (`bert.`, `roberta.`…). */
interface Names {
  readonly prefixes: readonly string[]
  readonly word: string
  readonly position: string
  readonly tokenType: string | null
  readonly embeddingNorm: string
  readonly layer: (i: number) => string
  readonly query: string
  readonly key: string
  readonly value: string
  readonly attentionOut: string
  readonly attentionNorm: string
  readonly ffnIn: string
  readonly ffnOut: string
  readonly outputNorm: string
  readonly pooler: string | null
}

const BERT_LAYER = {
  layer: (i: number) => `encoder.layer.${i}.`,
  query: 'attention.self.query',
  key: 'attention.self.key',
  value: 'attention.self.value',
  attentionOut: 'attention.output.dense',
  attentionNorm: 'attention.output.LayerNorm',
  ffnIn: 'intermediate.dense',
  ffnOut: 'output.dense',
  outputNorm: 'output.LayerNorm',
}

const ROBERTA: Names = {
  prefixes: ['', 'roberta.'],
  word: 'embeddings.word_embeddings.weight',
  position: 'embeddings.position_embeddings.weight',
  tokenType: 'embeddings.token_type_embeddings.weight',
  embeddingNorm: 'embeddings.LayerNorm',
  pooler: 'pooler.dense',
  ...BERT_LAYER,
}

const NAMES: Readonly<Record<EncoderFamily, Names>> = {
  bert: {
    prefixes: ['', 'bert.'],
    word: 'embeddings.word_embeddings.weight',
    position: 'embeddings.position_embeddings.weight',
    tokenType: 'embeddings.token_type_embeddings.weight',
    embeddingNorm: 'embeddings.LayerNorm',
    pooler: 'pooler.dense',
    ...BERT_LAYER,
  },
  roberta: ROBERTA,
  // XLM-RoBERTa is RoBERTa's architecture with another vocabulary; HF keeps its names.
  'xlm-roberta': ROBERTA,
  distilbert: {
    prefixes: ['', 'distilbert.'],
    word: 'embeddings.word_embeddings.weight',
    position: 'embeddings.position_embeddings.weight',
    tokenType: null,
    embeddingNorm: 'embeddings.LayerNorm',
    pooler: null,
    layer: (i) => `transformer.layer.${i}.`,
    query: 'attention.q_lin',
    key: 'attention.k_lin',
    value: 'attention.v_lin',
    attentionOut: 'attention.out_lin',
    attentionNorm: 'sa_layer_norm',
    ffnIn: 'ffn.lin1',
    ffnOut: 'ffn.lin2',
    outputNorm: 'output_layer_norm',
  },
}

/** Reads the family's hyper-parameters; throws `model_not_convertible` naming what is missing. */
export function encoderConfig(config: Readonly<Record<string, unknown>>): EncoderConfig {
  const family = config.model_type
  if (typeof family !== 'string' || !isConvertible(family)) {
    throw notConvertible(
      `model_type "${String(family)}" is not one berth converts (${CONVERTIBLE_FAMILIES.join(', ')})`,
    )
  }
  const int = (key: string): number => {
    const value = config[key]
    if (!Number.isSafeInteger(value) || (value as number) <= 0) {
      throw notConvertible(`config.json needs a positive integer "${key}"`)
    }
    return value as number
  }
  const distil = family === 'distilbert'
  const act = String(config[distil ? 'activation' : 'hidden_act'] ?? 'gelu')
  const activation =
    act === 'gelu'
      ? 'gelu'
      : act === 'gelu_new' || act === 'gelu_pytorch_tanh'
        ? 'gelu_tanh'
        : act === 'relu'
          ? 'relu'
          : undefined
  if (activation === undefined) throw notConvertible(`activation "${act}" is not supported`)
  const positions = config.position_embedding_type ?? 'absolute'
  if (positions !== 'absolute') {
    throw notConvertible(`position_embedding_type "${String(positions)}" is not supported`)
  }
  const hidden = int(distil ? 'dim' : 'hidden_size')
  const heads = int(distil ? 'n_heads' : 'num_attention_heads')
  if (hidden % heads !== 0) throw notConvertible('the hidden size is not a multiple of the heads')
  const eps = distil ? 1e-12 : Number(config.layer_norm_eps ?? 1e-12)
  const pad = config.pad_token_id
  return {
    family,
    hidden,
    heads,
    layers: int(distil ? 'n_layers' : 'num_hidden_layers'),
    eps: Number.isFinite(eps) && eps > 0 ? eps : 1e-12,
    activation,
    padTokenId: Number.isSafeInteger(pad) ? (pad as number) : family === 'bert' ? 0 : 1,
  }
}

/** The family's inputs, in the order the graph declares them. */
export function encoderInputs(family: EncoderFamily): string[] {
  return family === 'bert'
    ? ['input_ids', 'attention_mask', 'token_type_ids']
    : ['input_ids', 'attention_mask']
}

/**
 * Builds the ONNX graph of the encoder whose weights `reader` holds. Throws
 * `model_not_convertible` when a weight is missing or has the wrong shape.
 */
export async function encoderToOnnx(config: EncoderConfig, reader: WeightsReader): Promise<Buffer> {
  const names = NAMES[config.family]
  const shapes = new Map(reader.tensors.map((t) => [t.name, t]))
  const prefix = names.prefixes.find((p) => shapes.has(`${p}${names.word}`))
  if (prefix === undefined) {
    throw notConvertible(`the weights have no ${names.word} (with or without a model prefix)`)
  }
  const g = new GraphBuilder()
  const H = config.hidden
  const headDim = H / config.heads

  /** A weight by its full name, checked against `shape` (-1: any size), widened to FP32. */
  const weightAt = async (full: string, shape: readonly number[]): Promise<Float32Array> => {
    const tensor = shapes.get(full)
    if (tensor === undefined) throw notConvertible(`the weights have no ${full}`)
    if (
      tensor.shape.length !== shape.length ||
      tensor.shape.some((d, i) => shape[i] !== -1 && d !== shape[i])
    ) {
      throw notConvertible(
        `${full} has shape [${tensor.shape.join(', ')}], expected [${shape.map((d) => (d === -1 ? '?' : d)).join(', ')}]`,
      )
    }
    return toFloat32(tensor.dtype, await reader.bytes(full), full)
  }
  const has = (name: string) => shapes.has(`${prefix}${name}`)
  const init = async (name: string, shape: readonly number[]) => {
    const full = `${prefix}${name}`
    const data = await weightAt(full, shape)
    return g.floats(full, shapes.get(full)?.shape ?? shape, data)
  }
  /** `x · Wᵀ + b` for a torch Linear named `full`: the weight [out, in] is stored transposed. */
  const linearAt = async (x: string, full: string, inputs: number, outputs: number) => {
    const w = await weightAt(`${full}.weight`, [outputs, inputs])
    const t = new Float32Array(inputs * outputs)
    for (let o = 0; o < outputs; o++) {
      for (let i = 0; i < inputs; i++) t[i * outputs + o] = w[o * inputs + i] as number
    }
    const wT = g.floats(`${full}.weight.T`, [inputs, outputs], t)
    const bias = g.floats(`${full}.bias`, [outputs], await weightAt(`${full}.bias`, [outputs]))
    return g.op('Add', [g.op('MatMul', [x, wT]), bias])
  }
  const linear = (x: string, name: string, inputs: number, outputs: number) =>
    linearAt(x, `${prefix}${name}`, inputs, outputs)
  const layerNorm = async (x: string, name: string) =>
    g.op(
      'LayerNormalization',
      [x, await init(`${name}.weight`, [H]), await init(`${name}.bias`, [H])],
      {
        axis: -1,
        epsilon: { float: config.eps },
      },
    )

  // Embeddings: words + positions (+ token types).
  const zero = g.ints('const_i_0', [1], [0])
  const word = await init(names.word, [-1, H])
  let x = g.op('Gather', [word, 'input_ids'])
  const position = await init(names.position, [-1, H])
  if (config.family === 'roberta' || config.family === 'xlm-roberta') {
    // HF's create_position_ids_from_input_ids: padding keeps padding_idx, the rest count from it.
    const pad = g.ints('const_i_pad', [], [config.padTokenId])
    const real = g.op('Cast', [g.op('Not', [g.op('Equal', ['input_ids', pad])])], { to: INT64 })
    const counted = g.op('Mul', [g.op('CumSum', [real, g.ints('const_i_axis1', [], [1])]), real])
    x = g.op('Add', [x, g.op('Gather', [position, g.op('Add', [counted, pad])])])
  } else {
    const seq = g.op('Gather', [g.op('Shape', ['input_ids']), g.ints('const_i_1', [], [1])])
    const length = g.op('Unsqueeze', [seq, zero])
    x = g.op('Add', [x, g.op('Unsqueeze', [g.op('Slice', [position, zero, length, zero]), zero])])
  }
  if (names.tokenType !== null && has(names.tokenType)) {
    const types = await init(names.tokenType, [-1, H])
    // RoBERTa-style models have one token type and no token_type_ids input: type 0 everywhere.
    const ids = config.family === 'bert' ? 'token_type_ids' : g.ints('const_i_0s', [], [0])
    x = g.op('Add', [x, g.op('Gather', [types, ids])])
  }
  x = await layerNorm(x, names.embeddingNorm)

  // Additive mask [B, 1, 1, S]: 0 where attended, float32's lowest where masked (as HF does).
  const masked = g.op('Sub', [g.scalar(1), g.op('Cast', ['attention_mask'], { to: FLOAT })])
  const bias = g.op('Unsqueeze', [
    g.op('Mul', [masked, g.scalar(-3.4028234663852886e38)]),
    g.ints('const_i_axes12', [2], [1, 2]),
  ])
  const split = g.ints('const_i_split', [4], [0, 0, config.heads, headDim])
  const merge = g.ints('const_i_merge', [3], [0, 0, H])
  const intermediate = shapes.get(`${prefix}${names.layer(0)}${names.ffnIn}.weight`)?.shape[0]
  if (intermediate === undefined)
    throw notConvertible(`the weights have no ${names.layer(0)}${names.ffnIn}.weight`)

  for (let i = 0; i < config.layers; i++) {
    const p = names.layer(i)
    const heads = async (name: string, perm: readonly number[]) =>
      g.op('Transpose', [g.op('Reshape', [await linear(x, `${p}${name}`, H, H), split])], { perm })
    const q = await heads(names.query, [0, 2, 1, 3])
    const kT = await heads(names.key, [0, 2, 3, 1])
    const v = await heads(names.value, [0, 2, 1, 3])
    const scores = g.op('Add', [
      g.op('Mul', [g.op('MatMul', [q, kT]), g.scalar(1 / Math.sqrt(headDim))]),
      bias,
    ])
    const context = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v])
    const merged = g.op('Reshape', [g.op('Transpose', [context], { perm: [0, 2, 1, 3] }), merge])
    const attended = await layerNorm(
      g.op('Add', [await linear(merged, `${p}${names.attentionOut}`, H, H), x]),
      `${p}${names.attentionNorm}`,
    )
    const hiddenIn = await linear(attended, `${p}${names.ffnIn}`, H, intermediate)
    const activated = activate(g, hiddenIn, config.activation)
    x = await layerNorm(
      g.op('Add', [await linear(activated, `${p}${names.ffnOut}`, intermediate, H), attended]),
      `${p}${names.outputNorm}`,
    )
  }
  g.output('last_hidden_state', x)

  const outputs: Array<readonly [string, number, readonly (number | string)[]]> = [
    ['last_hidden_state', FLOAT, ['batch', 'sequence', H]],
  ]
  let pooled: string | undefined
  if (names.pooler !== null && has(`${names.pooler}.weight`)) {
    const first = g.op('Gather', [x, g.ints('const_i_0s', [], [0])], { axis: 1 })
    pooled = g.op('Tanh', [await linear(first, names.pooler, H, H)])
    g.output('pooler_output', pooled)
    outputs.push(['pooler_output', FLOAT, ['batch', H]])
  }

  // A sequence-classification head (HF's *ForSequenceClassification names, outside the prefix):
  // BERT classifies the pooler output; RoBERTa and DistilBERT the first token, through a dense
  // layer (tanh, resp. ReLU) first.
  const bert = config.family === 'bert'
  const distil = config.family === 'distilbert'
  const out = shapes.get(bert || distil ? 'classifier.weight' : 'classifier.out_proj.weight')
  if (out !== undefined && out.shape.length === 2) {
    const labels = out.shape[0] as number
    let features: string
    if (bert) {
      if (pooled === undefined) throw notConvertible('a BERT classifier needs the pooler weights')
      features = pooled
    } else {
      const first = g.op('Gather', [x, g.ints('const_i_0s', [], [0])], { axis: 1 })
      const dense = await linearAt(first, distil ? 'pre_classifier' : 'classifier.dense', H, H)
      features = g.op(distil ? 'Relu' : 'Tanh', [dense])
    }
    const logits = await linearAt(
      features,
      bert || distil ? 'classifier' : 'classifier.out_proj',
      H,
      labels,
    )
    g.output('logits', logits)
    outputs.push(['logits', FLOAT, ['batch', labels]])
  }
  return g.encode(
    `berth-${config.family}`,
    encoderInputs(config.family).map((n) => [n, INT64, ['batch', 'sequence']] as const),
    outputs,
    { converted_by: 'berth', family: config.family },
  )
}

function activate(g: GraphBuilder, x: string, activation: EncoderConfig['activation']): string {
  if (activation === 'relu') return g.op('Relu', [x])
  if (activation === 'gelu') {
    // 0.5 · x · (1 + erf(x / √2))
    const erf = g.op('Erf', [g.op('Mul', [x, g.scalar(Math.SQRT1_2)])])
    return g.op('Mul', [g.op('Mul', [x, g.scalar(0.5)]), g.op('Add', [erf, g.scalar(1)])])
  }
  // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
  const cube = g.op('Mul', [g.op('Mul', [x, x]), x])
  const inner = g.op('Mul', [
    g.op('Add', [x, g.op('Mul', [cube, g.scalar(0.044715)])]),
    g.scalar(Math.sqrt(2 / Math.PI)),
  ])
  return g.op('Mul', [
    g.op('Mul', [x, g.scalar(0.5)]),
    g.op('Add', [g.op('Tanh', [inner]), g.scalar(1)]),
  ])
}

/** Widens a float tensor's bytes to FP32 (F16 and BF16 exactly). */
function toFloat32(dtype: string, bytes: Buffer, name: string): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  switch (dtype) {
    case 'F32':
      // A copy into its own (aligned) buffer; safetensors and torch store little-endian, as
      // every platform Node runs on here.
      return new Float32Array(Uint8Array.prototype.slice.call(bytes).buffer)
    case 'F16': {
      const out = new Float32Array(bytes.byteLength / 2)
      for (let i = 0; i < out.length; i++) out[i] = fromHalf(view.getUint16(i * 2, true))
      return out
    }
    case 'BF16': {
      const out = new Float32Array(bytes.byteLength / 2)
      const bits = new Uint32Array(out.buffer)
      for (let i = 0; i < out.length; i++) bits[i] = view.getUint16(i * 2, true) << 16
      return out
    }
    default:
      throw notConvertible(`${name} is ${dtype}; only F32, F16 and BF16 weights are converted`)
  }
}

function notConvertible(reason: string): BerthError {
  return new BerthError(
    'model_not_convertible',
    `the weights cannot be converted to ONNX: ${reason}`,
    {
      details: { reason },
    },
  )
}
