import onnxProto from 'onnx-proto'

const { onnx } = onnxProto

export const FLOAT = onnx.TensorProto.DataType.FLOAT
export const INT64 = onnx.TensorProto.DataType.INT64

type Dim = number | string
type Attribute = number | readonly number[] | { readonly float: number }

/**
 * A small ONNX graph builder over onnx-proto: nodes with generated value names, float and int64
 * initializers, typed inputs and outputs. Enough for the encoders berth converts; not a
 * general-purpose library.
 */
export class GraphBuilder {
  readonly #nodes: onnxProto.onnx.INodeProto[] = []
  readonly #initializers: onnxProto.onnx.ITensorProto[] = []
  readonly #names = new Set<string>()
  #counter = 0

  /** Adds a node; returns its (first) output's name. */
  op(type: string, inputs: readonly string[], attributes: Record<string, Attribute> = {}): string {
    const output = `${type.toLowerCase()}_${this.#counter++}`
    this.#nodes.push({
      opType: type,
      input: [...inputs],
      output: [output],
      attribute: Object.entries(attributes).map(([name, value]) => attribute(name, value)),
    })
    return output
  }

  /** Renames a value to a graph output name. */
  output(name: string, value: string): void {
    this.#nodes.push({ opType: 'Identity', input: [value], output: [name] })
  }

  /** A float initializer (named once: the same name returns the existing one). */
  floats(name: string, dims: readonly number[], data: Float32Array): string {
    if (this.#names.has(name)) return name
    this.#names.add(name)
    this.#initializers.push({
      name,
      dataType: FLOAT,
      dims: [...dims],
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    })
    return name
  }

  /** A float constant. */
  scalar(value: number): string {
    return this.floats(`const_f_${value}`, [], Float32Array.of(value))
  }

  /** An int64 initializer. */
  ints(name: string, dims: readonly number[], values: readonly number[]): string {
    if (this.#names.has(name)) return name
    this.#names.add(name)
    const data = BigInt64Array.from(values.map(BigInt))
    this.#initializers.push({
      name,
      dataType: INT64,
      dims: [...dims],
      rawData: new Uint8Array(data.buffer),
    })
    return name
  }

  /** Encodes the model: opset 17 (LayerNormalization), IR 8. */
  encode(
    name: string,
    inputs: ReadonlyArray<readonly [string, number, readonly Dim[]]>,
    outputs: ReadonlyArray<readonly [string, number, readonly Dim[]]>,
    metadata: Readonly<Record<string, string>>,
  ): Buffer {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'berth',
      opsetImport: [{ domain: '', version: 17 }],
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name,
        node: this.#nodes,
        initializer: this.#initializers,
        input: inputs.map(([n, t, dims]) => valueInfo(n, t, dims)),
        output: outputs.map(([n, t, dims]) => valueInfo(n, t, dims)),
      },
    })
    return Buffer.from(onnx.ModelProto.encode(model).finish())
  }
}

function attribute(name: string, value: Attribute): onnxProto.onnx.IAttributeProto {
  const type = onnx.AttributeProto.AttributeType
  if (typeof value === 'number') return { name, type: type.INT, i: value }
  if (Array.isArray(value)) return { name, type: type.INTS, ints: [...(value as number[])] }
  return { name, type: type.FLOAT, f: (value as { float: number }).float }
}

function valueInfo(name: string, elemType: number, dims: readonly Dim[]) {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: {
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  }
}
