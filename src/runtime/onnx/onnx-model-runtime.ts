import * as ort from 'onnxruntime-node'
import { BerthError } from '../../errors/berth-error.js'
import type { Datatype, TensorSpec, WireTensor } from '../../tensors/tensor.js'
import type { LoadedModel, LoadOptions, ModelRuntime } from '../model-runtime.js'

type OrtType = ort.Tensor.Type

/** Open Inference Protocol datatype ↔ ONNX Runtime tensor type, for the numeric types ORT runs. */
const ORT_BY_OIP: Readonly<Partial<Record<Datatype, OrtType>>> = {
  FP32: 'float32',
  FP64: 'float64',
  FP16: 'float16',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  BOOL: 'bool',
}
const OIP_BY_ORT = new Map(
  Object.entries(ORT_BY_OIP).map(([oip, type]) => [type as string, oip as Datatype]),
)

/** Typed-array constructors over the raw bytes, per ORT type. */
const VIEW: Readonly<
  Record<string, (b: ArrayBuffer, offset: number, length: number) => ort.Tensor.DataType>
> = {
  float32: (b, o, n) => new Float32Array(b, o, n),
  float64: (b, o, n) => new Float64Array(b, o, n),
  float16: (b, o, n) => new Uint16Array(b, o, n),
  int8: (b, o, n) => new Int8Array(b, o, n),
  int16: (b, o, n) => new Int16Array(b, o, n),
  int32: (b, o, n) => new Int32Array(b, o, n),
  int64: (b, o, n) => new BigInt64Array(b, o, n),
  uint8: (b, o, n) => new Uint8Array(b, o, n),
  uint16: (b, o, n) => new Uint16Array(b, o, n),
  uint32: (b, o, n) => new Uint32Array(b, o, n),
  uint64: (b, o, n) => new BigUint64Array(b, o, n),
  bool: (b, o, n) => new Uint8Array(b, o, n),
}
const ITEM_BYTES: Readonly<Record<string, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  int8: 1,
  int16: 2,
  int32: 4,
  int64: 8,
  uint8: 1,
  uint16: 2,
  uint32: 4,
  uint64: 8,
  bool: 1,
}

/** How ONNX Runtime says an allocation failed: a `std::bad_alloc`, or its arena's message. */
const OUT_OF_MEMORY = /bad_alloc|bad allocation|Failed to allocate memory/

/** ONNX models on ONNX Runtime's CPU execution provider. */
export class OnnxModelRuntime implements ModelRuntime {
  /** `model`: the graph's path, or the graph itself (a converted one that could not be kept). */
  async load(model: string | Uint8Array, options: LoadOptions): Promise<LoadedModel> {
    let session: ort.InferenceSession
    try {
      const create = (settings: ort.InferenceSession.SessionOptions) =>
        typeof model === 'string'
          ? ort.InferenceSession.create(model, settings)
          : ort.InferenceSession.create(model, settings)
      session = await create({
        executionProviders: ['cpu'],
        intraOpNumThreads: Math.max(1, Math.floor(options.intraOpThreads)),
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        // Memory goes back to the system after each request, so the runner's resident set (what
        // its memory_gb is checked against) is what the model holds now, not the peak of every
        // request so far; and ONNX Runtime's arena, once an allocation failed, took 700 MB for the
        // next 12-byte output. The small models' latency did not change.
        enableCpuMemArena: false,
      })
    } catch (err) {
      throw new BerthError(
        'model_load_failed',
        `ONNX Runtime cannot load the model: ${messageOf(err)}`,
        {
          cause: err,
        },
      )
    }
    return new OnnxLoadedModel(session)
  }
}

class OnnxLoadedModel implements LoadedModel {
  readonly inputs: readonly TensorSpec[]
  readonly outputs: readonly TensorSpec[]
  readonly #session: ort.InferenceSession
  #released = false

  constructor(session: ort.InferenceSession) {
    this.#session = session
    this.inputs = session.inputMetadata.map(specOf)
    this.outputs = session.outputMetadata.map(specOf)
  }

  async infer(
    inputs: readonly WireTensor[],
    outputs: readonly string[] | null,
  ): Promise<WireTensor[]> {
    const feeds: Record<string, ort.Tensor> = {}
    for (const input of inputs) feeds[input.name] = toOrt(input)
    let results: ort.InferenceSession.ReturnType
    try {
      results =
        outputs === null
          ? await this.#session.run(feeds)
          : await this.#session.run(feeds, [...outputs])
    } catch (err) {
      const message = messageOf(err)
      if (OUT_OF_MEMORY.test(message)) {
        // The runner is sound: this request asked for more than it can allocate.
        throw new BerthError(
          'inference_out_of_memory',
          'ONNX Runtime could not allocate the memory this request needs: send smaller inputs',
          { cause: err },
        )
      }
      throw new BerthError('inference_failed', `the model failed on these inputs: ${message}`, {
        cause: err,
      })
    }
    return Object.entries(results).map(([name, tensor]) => fromOrt(name, tensor))
  }

  async unload(): Promise<void> {
    if (this.#released) return
    this.#released = true
    await this.#session.release()
  }
}

function specOf(meta: ort.InferenceSession.ValueMetadata): TensorSpec {
  if (!meta.isTensor) return { name: meta.name, datatype: 'UNSUPPORTED', shape: [] }
  return {
    name: meta.name,
    datatype: OIP_BY_ORT.get(meta.type) ?? `ORT_${meta.type}`,
    shape: meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : String(d))),
  }
}

function toOrt(tensor: WireTensor): ort.Tensor {
  const type = ORT_BY_OIP[tensor.datatype]
  const item = type === undefined ? undefined : ITEM_BYTES[type]
  const view = type === undefined ? undefined : VIEW[type]
  if (type === undefined || item === undefined || view === undefined) {
    throw new BerthError(
      'inference_failed',
      `datatype ${tensor.datatype} is not supported by ONNX Runtime here`,
    )
  }
  // Typed arrays need aligned offsets: copy when the bytes sit at an odd place in the frame.
  const aligned =
    tensor.data.byteOffset % item === 0 ? tensor.data : Uint8Array.prototype.slice.call(tensor.data)
  const data = view(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.byteLength / item)
  return new ort.Tensor(type, data, [...tensor.shape])
}

function fromOrt(name: string, tensor: ort.Tensor): WireTensor {
  const data = tensor.data as ArrayBufferView
  const datatype = OIP_BY_ORT.get(tensor.type)
  if (datatype === undefined) {
    throw new BerthError(
      'inference_failed',
      `output "${name}" is of type ${tensor.type}, which berth cannot return`,
    )
  }
  return {
    name,
    datatype,
    shape: [...tensor.dims],
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
