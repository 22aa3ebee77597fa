import { createReadStream } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { WeightsDetails } from '../domain/manifest.js'
import { BerthError } from '../errors/berth-error.js'
import { openTorchStateDict, type TorchStateDict } from './pytorch/torch-checkpoint.js'
import { readSafetensorsHeader, SAFETENSORS_DTYPE_BYTES } from './safetensors/safetensors-header.js'

/** One tensor of a weights model, as the inventory shows it. */
export interface WeightTensor {
  readonly name: string
  /** safetensors dtype names (`F32`, `BF16`, `I64`, …), whatever the source format. */
  readonly dtype: string
  readonly shape: readonly number[]
  /** Bytes of the tensor's elements, contiguous. */
  readonly byteLength: number
}

/**
 * The tensors of an installed weights model (safetensors files or PyTorch state_dicts), read
 * without running any code from them. Owns open files: `close()` when done (idempotent).
 */
export interface WeightsReader {
  /** In file order; a name that appears in several files is kept once (the first). */
  readonly tensors: readonly WeightTensor[]
  /** The tensor called `name`. Throws `tensor_not_found`. */
  tensor(name: string): WeightTensor
  /**
   * The tensor's elements, row-major and little-endian, as a stream (read from the file, not
   * buffered, wherever the layout allows). Throws `tensor_not_found`.
   */
  stream(name: string): Promise<Readable>
  /** The same bytes, in memory. Throws `tensor_not_found`. */
  bytes(name: string): Promise<Buffer>
  close(): void
}

interface Located {
  readonly tensor: WeightTensor
  readonly open: () => Promise<Readable>
}

/** Which files hold a model's tensors (relative to its folder), and in which format. */
export interface WeightSources {
  readonly source: WeightsDetails['source']
  readonly files: readonly string[]
}

/** Opens the weight files of a model installed at `root`. */
export async function openWeights(root: string, sources: WeightSources): Promise<WeightsReader> {
  const located = new Map<string, Located>()
  const stateDicts: TorchStateDict[] = []
  const close = () => {
    for (const dict of stateDicts) dict.close()
  }
  try {
    for (const file of sources.files) {
      const path = join(root, file)
      if (sources.source === 'safetensors') {
        const header = await readSafetensorsHeader(path, file)
        for (const t of header.tensors) {
          if (located.has(t.name)) continue
          const tensor = {
            name: t.name,
            dtype: t.dtype,
            shape: t.shape,
            byteLength: t.end - t.start,
          }
          // A read stream's `end` is inclusive, so an empty tensor gets an empty stream.
          const open = async (): Promise<Readable> =>
            t.end > t.start
              ? createReadStream(path, { start: t.start, end: t.end - 1 })
              : Readable.from([])
          located.set(t.name, { tensor, open })
        }
      } else {
        const dict = await openTorchStateDict(path, file)
        stateDicts.push(dict)
        for (const t of dict.tensors) {
          if (located.has(t.name)) continue
          const numel = t.shape.reduce((a, b) => a * b, 1)
          const byteLength = numel * (SAFETENSORS_DTYPE_BYTES[t.dtype] ?? 0)
          const tensor = { name: t.name, dtype: t.dtype, shape: t.shape, byteLength }
          located.set(t.name, { tensor, open: () => dict.streamOf(t) })
        }
      }
    }
  } catch (err) {
    close()
    throw err
  }
  const find = (name: string): Located => {
    const found = located.get(name)
    if (found === undefined) {
      throw new BerthError('tensor_not_found', `the model has no tensor "${name}"`, {
        details: { tensor: name },
      })
    }
    return found
  }
  return {
    tensors: [...located.values()].map((l) => l.tensor),
    tensor: (name) => find(name).tensor,
    stream: (name) => find(name).open(),
    bytes: async (name) => {
      const { tensor, open } = find(name)
      const chunks: Buffer[] = []
      for await (const chunk of await open()) chunks.push(chunk as Buffer)
      const bytes = Buffer.concat(chunks)
      if (bytes.length !== tensor.byteLength) {
        throw new BerthError(
          'weights_corrupt',
          `tensor "${name}" has ${bytes.length} bytes; its dtype and shape need ${tensor.byteLength}`,
          { details: { tensor: name } },
        )
      }
      return bytes
    },
    close,
  }
}
