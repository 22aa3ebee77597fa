import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { encoderConfig, encoderToOnnx } from '../../conversion/encoder-to-onnx.js'
import { BerthError, isBerthError } from '../../errors/berth-error.js'
import { openWeights } from '../../formats/weights-reader.js'
import type { LoadedModel, LoadOptions, ModelRuntime } from '../model-runtime.js'
import { OnnxModelRuntime } from '../onnx/onnx-model-runtime.js'

/** Where a model's converted graph is kept, inside its installed folder. */
export const CONVERTED_GRAPH = join('.berth', 'encoder.onnx')

/** A `config.json` larger than this is not a model config. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024

/**
 * Encoder weights (BERT family) served by ONNX Runtime: the first load converts `config.json`
 * and the weights into an ONNX graph and keeps it beside the model; later loads (restarts,
 * replicas, a restarted server) use the kept graph. Conversion runs here, in the runner process,
 * so its CPU and memory never touch the server. A runner that reads the models folder read-only
 * (a container's mount) cannot keep the graph: it loads the one it converted, and converts again
 * at its next load.
 */
export class EncoderModelRuntime implements ModelRuntime {
  readonly #onnx = new OnnxModelRuntime()

  async load(modelDir: string, options: LoadOptions): Promise<LoadedModel> {
    const graph = join(modelDir, CONVERTED_GRAPH)
    if (await exists(graph)) return this.#onnx.load(graph, options)
    const bytes = await this.#convert(modelDir, options)
    return this.#onnx.load((await keep(modelDir, graph, bytes)) ? graph : bytes, options)
  }

  async #convert(modelDir: string, options: LoadOptions): Promise<Buffer> {
    const files = options.weights
    if (files === undefined) throw loadFailed('no weight files were named to convert')
    const configPath = join(modelDir, 'config.json')
    if ((await stat(configPath).catch(() => undefined))?.isFile() !== true) {
      throw loadFailed('the model has no config.json to convert from')
    }
    if ((await stat(configPath)).size > MAX_CONFIG_BYTES)
      throw loadFailed('config.json is too large')
    let config: unknown
    try {
      config = JSON.parse(await readFile(configPath, 'utf8'))
    } catch {
      throw loadFailed('config.json is not JSON')
    }
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      throw loadFailed('config.json is not a JSON object')
    }
    const reader = await openWeights(modelDir, files)
    try {
      return await encoderToOnnx(encoderConfig(config as Record<string, unknown>), reader)
    } catch (err) {
      if (isBerthError(err, 'model_not_convertible')) throw loadFailed(err.message, err)
      throw err
    } finally {
      reader.close()
    }
  }
}

/**
 * Keeps a converted graph beside the model; whether it could (a read-only folder cannot). Written
 * aside and renamed: a crash mid-write never leaves a half graph to load later.
 */
async function keep(modelDir: string, graph: string, bytes: Buffer): Promise<boolean> {
  const partial = `${graph}.${process.pid}.partial`
  try {
    // Not recursive: the model folder is there, and Node's recursive mkdir says ENOENT for EROFS.
    await mkdir(join(modelDir, '.berth')).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err
    })
    await writeFile(partial, bytes)
    await rename(partial, graph)
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return false
    throw err
  } finally {
    await rm(partial, { force: true }).catch(() => undefined)
  }
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true
}

function loadFailed(message: string, cause?: unknown): BerthError {
  return new BerthError('model_load_failed', message, { cause })
}
