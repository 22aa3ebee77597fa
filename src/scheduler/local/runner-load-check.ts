import { join } from 'node:path'
import { BerthError, isBerthError } from '../../errors/berth-error.js'
import { withServerPathsHidden } from '../../errors/hide-server-paths.js'
import type { ModelLoadCheck } from '../model-load-check.js'
import type { WorkerProcess } from './worker-process.js'

export interface RunnerLoadCheckOptions {
  /** Bound on loading the model. */
  readonly timeoutMs: number
  /** An ONNX runner process with no model (the scheduler's `startWorker`: a spare if ready). */
  readonly startWorker: () => Promise<WorkerProcess>
}

/**
 * Loads the model in a throwaway runner process: a model that crashes or hangs ONNX Runtime
 * takes only that process down, and is refused.
 */
export class RunnerLoadCheck implements ModelLoadCheck {
  readonly #options: RunnerLoadCheckOptions

  constructor(options: RunnerLoadCheckOptions) {
    this.#options = options
  }

  async checkOnnx(root: string, file: string): Promise<void> {
    const worker = await this.#options.startWorker()
    try {
      const modelPath = join(root, file)
      await worker.call(
        { type: 'load', slot: 0, modelPath, intraOpThreads: 1 },
        this.#options.timeoutMs,
      )
    } catch (err) {
      if (isBerthError(err, 'model_load_failed')) throw withServerPathsHidden(err, root)
      // The model took its runner down or never finished loading: the model is at fault.
      throw new BerthError('model_load_failed', 'loading the model crashed or hung its runner', {
        details: { reason: isBerthError(err) ? err.code : 'unknown' },
        cause: err,
      })
    } finally {
      await worker.stop()
    }
  }
}
