import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import onnxProto from 'onnx-proto'
import type { ManifestFile, OnnxDetails } from '../../domain/manifest.js'
import { BerthError } from '../../errors/berth-error.js'
import type { TensorSpec } from '../../tensors/tensor.js'
import { oipDatatype } from './onnx-datatypes.js'

const { onnx } = onnxProto
type ValueInfo = onnxProto.onnx.IValueInfoProto

const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL

/**
 * Picks the primary `.onnx` file of `files` (the only one, else `model.onnx` at the root, else
 * `onnx/model.onnx`), or `undefined` when there is none.
 */
export function primaryOnnxFile(files: readonly ManifestFile[]): string | undefined {
  const candidates = files.map((f) => f.path).filter((p) => p.toLowerCase().endsWith('.onnx'))
  if (candidates.length <= 1) return candidates[0]
  return ['model.onnx', 'onnx/model.onnx'].find((p) => candidates.includes(p))
}

/**
 * Parses an untrusted ONNX model (`primary`, relative to `root`) and describes it: IR version,
 * opsets, producer, the input and output signature, and the external-data files it needs, each
 * of which must be one of `files`. Throws `onnx_invalid` or `onnx_external_data_invalid`.
 */
export async function describeOnnx(
  root: string,
  primary: string,
  files: readonly ManifestFile[],
): Promise<OnnxDetails> {
  const bytes = await readFile(join(root, primary))
  let model: onnxProto.onnx.ModelProto
  try {
    model = onnx.ModelProto.decode(bytes)
  } catch (err) {
    throw invalid(primary, 'it does not parse as an ONNX protobuf', err)
  }
  const graph = model.graph
  const irVersion = Number(model.irVersion)
  if (graph === null || graph === undefined || !(irVersion > 0)) {
    throw invalid(primary, 'it has no IR version or no graph')
  }
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ''))
  // Before IR 4, initializers were listed as graph inputs too; they are not inputs to feed.
  const inputs = (graph.input ?? []).filter((v) => !initializers.has(v.name ?? ''))
  const outputs = graph.output ?? []
  if (outputs.length === 0) throw invalid(primary, 'its graph has no outputs')

  const opsets: Record<string, number> = {}
  for (const opset of model.opsetImport ?? []) {
    opsets[opset.domain ?? ''] = Number(opset.version ?? 0)
  }
  return {
    kind: 'onnx',
    primaryFile: primary,
    irVersion,
    opsets,
    producer: model.producerName ? model.producerName : null,
    externalDataFiles: externalDataFiles(model, primary, files),
    inputs: inputs.map((v, i) => tensorSpec(v, `input_${i}`, primary)),
    outputs: outputs.map((v, i) => tensorSpec(v, `output_${i}`, primary)),
  }
}

function tensorSpec(value: ValueInfo, fallbackName: string, primary: string): TensorSpec {
  const tensor = value.type?.tensorType
  if (tensor === null || tensor === undefined) {
    throw invalid(primary, `graph value "${value.name ?? fallbackName}" is not a tensor`)
  }
  const dims = tensor.shape?.dim ?? []
  return {
    name: value.name || fallbackName,
    datatype: oipDatatype(Number(tensor.elemType ?? 0)),
    // A dim without a value is dynamic: its symbolic name, or "?" when it has none.
    shape: dims.map((d) =>
      d.dimValue !== null && d.dimValue !== undefined && Number(d.dimValue) > 0
        ? Number(d.dimValue)
        : d.dimParam || '?',
    ),
  }
}

/** Every external-data location, checked to be a file of the archive beside the model. */
function externalDataFiles(
  model: onnxProto.onnx.ModelProto,
  primary: string,
  files: readonly ManifestFile[],
): string[] {
  const folder = primary.includes('/') ? primary.slice(0, primary.lastIndexOf('/') + 1) : ''
  const present = new Set(files.map((f) => f.path))
  const locations = new Set<string>()
  for (const tensor of model.graph?.initializer ?? []) {
    if (tensor.dataLocation !== EXTERNAL) continue
    const location = tensor.externalData?.find((e) => e.key === 'location')?.value ?? ''
    const segments = location.split('/')
    const unsafe =
      location === '' ||
      location.startsWith('/') ||
      location.includes('\\') ||
      /^[A-Za-z]:/.test(location) ||
      segments.some((s) => s === '..' || s === '')
    const path = `${folder}${location}`
    if (unsafe || !present.has(path)) {
      throw new BerthError(
        'onnx_external_data_invalid',
        `initializer "${tensor.name ?? ''}" keeps its data in "${location}", which is not a file beside the model`,
        { details: { file: primary, tensor: tensor.name ?? '', location } },
      )
    }
    locations.add(path)
  }
  return [...locations].sort()
}

function invalid(file: string, reason: string, cause?: unknown): BerthError {
  return new BerthError('onnx_invalid', `${file} is not a valid ONNX model: ${reason}`, {
    details: { file },
    cause,
  })
}
