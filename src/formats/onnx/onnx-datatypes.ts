import type { Datatype, DeclaredDatatype } from '../../tensors/tensor.js'

/**
 * ONNX `TensorProto.DataType` numbers → Open Inference Protocol datatype names. Types without
 * an OIP name (complex, float8, 4-bit) keep an `ONNX_<number>` name: described, not served.
 */
const OIP_BY_ONNX: Readonly<Partial<Record<number, Datatype>>> = {
  1: 'FP32',
  2: 'UINT8',
  3: 'INT8',
  4: 'UINT16',
  5: 'INT16',
  6: 'INT32',
  7: 'INT64',
  8: 'BYTES',
  9: 'BOOL',
  10: 'FP16',
  11: 'FP64',
  12: 'UINT32',
  13: 'UINT64',
  16: 'BF16',
}

export function oipDatatype(onnxType: number): DeclaredDatatype {
  return OIP_BY_ONNX[onnxType] ?? `ONNX_${onnxType}`
}
