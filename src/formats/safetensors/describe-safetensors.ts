import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ManifestFile, WeightsDetails } from '../../domain/manifest.js'
import { BerthError } from '../../errors/berth-error.js'
import { summarizeWeights } from '../weights-summary.js'
import { readSafetensorsHeader, type SafetensorsTensor } from './safetensors-header.js'

export const SAFETENSORS_INDEX = 'model.safetensors.index.json'

/** The `.safetensors` files of an archive, by path. */
export function safetensorsFiles(files: readonly ManifestFile[]): string[] {
  return files.map((f) => f.path).filter((p) => p.endsWith('.safetensors'))
}

/**
 * Checks the `.safetensors` files at `weightFiles` strictly and, when the archive has a
 * `model.safetensors.index.json`, checks the index against the shards.
 */
export async function describeSafetensors(
  root: string,
  weightFiles: readonly string[],
  files: readonly ManifestFile[],
  architecture: string | null,
): Promise<WeightsDetails> {
  const byFile = new Map<string, readonly SafetensorsTensor[]>()
  for (const path of weightFiles) {
    byFile.set(path, (await readSafetensorsHeader(join(root, path), path)).tensors)
  }
  const indexPath = files
    .map((f) => f.path)
    .find((p) => p === SAFETENSORS_INDEX || p.endsWith(`/${SAFETENSORS_INDEX}`))
  if (indexPath !== undefined) await checkIndex(root, indexPath, byFile)

  const tensors = [...byFile.values()].flat()
  const names = new Set<string>()
  for (const tensor of tensors) {
    if (names.has(tensor.name)) {
      throw new BerthError('safetensors_invalid', `tensor "${tensor.name}" appears in two files`, {
        details: { tensor: tensor.name, reason: 'duplicate tensor' },
      })
    }
    names.add(tensor.name)
  }
  return {
    kind: 'weights',
    source: 'safetensors',
    weightFiles: [...weightFiles],
    ...summarizeWeights(tensors),
    architecture,
  }
}

/** The index's weight_map must name exactly the shards' tensors, each in its own shard. */
async function checkIndex(
  root: string,
  indexPath: string,
  byFile: ReadonlyMap<string, readonly SafetensorsTensor[]>,
): Promise<void> {
  const fail = (reason: string) =>
    new BerthError('safetensors_index_invalid', `${indexPath}: ${reason}`, {
      details: { file: indexPath, reason },
    })
  let index: unknown
  try {
    index = JSON.parse(await readFile(join(root, indexPath), 'utf8'))
  } catch {
    throw fail('it is not JSON')
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw fail('it has no weight_map object')
  }
  const folder = indexPath.includes('/') ? indexPath.slice(0, indexPath.lastIndexOf('/') + 1) : ''
  const expected = new Map<string, string>()
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || !byFile.has(`${folder}${shard}`)) {
      throw fail(
        `tensor "${tensor}" is mapped to "${String(shard)}", which is not a shard in the archive`,
      )
    }
    expected.set(tensor, `${folder}${shard}`)
  }
  for (const shard of new Set(expected.values())) {
    for (const tensor of byFile.get(shard) ?? []) {
      if (expected.get(tensor.name) !== shard) {
        throw fail(`tensor "${tensor.name}" in ${shard} is not mapped to it`)
      }
      expected.delete(tensor.name)
    }
  }
  const missing = [...expected.keys()][0]
  if (missing !== undefined) throw fail(`tensor "${missing}" is missing from its shard`)
}
