import type { InspectedArchive } from '../archives/archive-inspector.js'
import type { Manifest } from '../domain/manifest.js'
import type { ModelFormat } from '../domain/model-format.js'
import { BerthError } from '../errors/berth-error.js'
import { describeHuggingFace } from './huggingface/describe-huggingface.js'
import { readHfConfig } from './huggingface/hf-config.js'
import { describeOnnx, primaryOnnxFile } from './onnx/describe-onnx.js'
import { describePytorch, torchFiles } from './pytorch/describe-pytorch.js'
import { describeSafetensors, safetensorsFiles } from './safetensors/describe-safetensors.js'

/**
 * Checks that an unpacked archive holds what `format` promises, by parsing its files, and
 * describes it as the model's manifest. Throws a 400 with a specific code otherwise.
 */
export async function validateModel(
  format: ModelFormat,
  archive: InspectedArchive,
): Promise<Manifest> {
  const base = {
    format,
    files: archive.files,
    totalBytes: archive.unpackedBytes,
  }
  switch (format) {
    case 'onnx': {
      const primary = primaryOnnxFile(archive.files)
      if (primary === undefined) {
        throw mismatch(
          format,
          'the archive needs one .onnx file (or several, one of them model.onnx)',
        )
      }
      return {
        ...base,
        runtime: 'onnx',
        baseImage: 'berth/runtime-minimal',
        details: await describeOnnx(archive.root, primary, archive.files),
      }
    }
    case 'safetensors': {
      if (safetensorsFiles(archive.files).length === 0) {
        throw mismatch(format, 'the archive has no .safetensors file')
      }
      const config = await readHfConfig(archive.root, archive.files)
      return {
        ...base,
        runtime: 'weights',
        baseImage: 'berth/runtime-full',
        details: await describeSafetensors(
          archive.root,
          safetensorsFiles(archive.files),
          archive.files,
          config?.modelType ?? null,
        ),
      }
    }
    case 'pytorch': {
      if (torchFiles(archive.files).length === 0) {
        throw mismatch(format, 'the archive has no .pt, .pth or .bin file')
      }
      const config = await readHfConfig(archive.root, archive.files)
      const details = await describePytorch(
        archive.root,
        torchFiles(archive.files),
        config?.modelType ?? null,
      )
      return {
        ...base,
        runtime: details.kind === 'torchscript' ? 'torch' : 'weights',
        baseImage: 'berth/runtime-full',
        details,
      }
    }
    case 'huggingface': {
      const config = await readHfConfig(archive.root, archive.files)
      if (config === undefined) {
        throw new BerthError(
          'huggingface_config_invalid',
          'a huggingface directory needs config.json at its root',
          {
            details: { file: 'config.json', reason: 'missing' },
          },
        )
      }
      const details = await describeHuggingFace(archive.root, archive.files, config)
      return {
        ...base,
        runtime: details.weights.kind === 'onnx' ? 'onnx' : 'weights',
        baseImage: 'berth/runtime-full',
        details,
      }
    }
  }
}

function mismatch(format: ModelFormat, reason: string): BerthError {
  return new BerthError('model_format_mismatch', `not a ${format} model: ${reason}`, {
    details: { model_format: format },
  })
}
