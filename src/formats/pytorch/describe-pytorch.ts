import { join } from 'node:path'
import type { ManifestFile, TorchScriptDetails, WeightsDetails } from '../../domain/manifest.js'
import { BerthError } from '../../errors/berth-error.js'
import { summarizeWeights } from '../weights-summary.js'
import { readTorchCheckpoint, type TorchTensor } from './torch-checkpoint.js'

const TORCH_EXTENSIONS = ['.pt', '.pth', '.bin']

/** The archive's torch checkpoint files (`.pt`, `.pth`, `.bin`), by path. */
export function torchFiles(files: readonly ManifestFile[]): string[] {
  return files.map((f) => f.path).filter((p) => TORCH_EXTENSIONS.some((e) => p.endsWith(e)))
}

/**
 * Reads the checkpoints at `paths` safely. One TorchScript file is a TorchScript model;
 * otherwise every file must be a state_dict, and together they are a weights model.
 */
export async function describePytorch(
  root: string,
  paths: readonly string[],
  architecture: string | null,
): Promise<WeightsDetails | TorchScriptDetails> {
  const tensors: TorchTensor[] = []
  const scripts: string[] = []
  for (const path of paths) {
    const checkpoint = await readTorchCheckpoint(join(root, path), path)
    if (checkpoint.kind === 'torchscript') scripts.push(path)
    else tensors.push(...checkpoint.tensors)
  }
  const [script] = scripts
  if (script !== undefined) {
    if (paths.length > 1) {
      throw new BerthError(
        'model_format_mismatch',
        'a TorchScript archive must hold exactly one .pt file',
        { details: { model_format: 'pytorch', files: paths } },
      )
    }
    return { kind: 'torchscript', file: script }
  }
  return {
    kind: 'weights',
    source: 'pytorch',
    weightFiles: [...paths],
    ...summarizeWeights(tensors),
    architecture,
  }
}
