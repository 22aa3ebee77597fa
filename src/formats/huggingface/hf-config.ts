import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ManifestFile } from '../../domain/manifest.js'
import { BerthError } from '../../errors/berth-error.js'

/** A `config.json` larger than this is not a model config. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024

/** The parts of a HuggingFace `config.json` berth reads. */
export interface HfConfig {
  readonly modelType: string | null
  readonly architectures: readonly string[]
}

/**
 * Reads `config.json` at the archive root, if there is one. Throws `huggingface_config_invalid`
 * when it is not a JSON object of sensible size.
 */
export async function readHfConfig(
  root: string,
  files: readonly ManifestFile[],
): Promise<HfConfig | undefined> {
  const fail = (reason: string) =>
    new BerthError('huggingface_config_invalid', `config.json ${reason}`, {
      details: { file: 'config.json', reason },
    })
  const parsed = await readArchiveJson(root, files, 'config.json', MAX_CONFIG_BYTES, fail)
  if (parsed === undefined) return undefined
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw fail('is not a JSON object')
  }
  const { model_type: modelType, architectures } = parsed as Record<string, unknown>
  return {
    modelType: typeof modelType === 'string' ? modelType : null,
    architectures: Array.isArray(architectures)
      ? architectures.filter((a): a is string => typeof a === 'string')
      : [],
  }
}

/**
 * A JSON file of the unpacked archive, parsed, or `undefined` when the archive lacks it. Too
 * large or unparsable: throws what `fail(reason)` builds.
 */
export async function readArchiveJson(
  root: string,
  files: readonly ManifestFile[],
  path: string,
  maxBytes: number,
  fail: (reason: string) => BerthError,
): Promise<unknown> {
  const entry = files.find((f) => f.path === path)
  if (entry === undefined) return undefined
  if (entry.sizeBytes > maxBytes) throw fail(`is larger than ${maxBytes / 1024 / 1024} MiB`)
  try {
    return JSON.parse(await readFile(join(root, path), 'utf8'))
  } catch {
    throw fail('is not JSON')
  }
}
