import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BerthError } from '../../errors/berth-error.js'

/** Debian's interpreter, the one `apt-get install python3-torch` serves. */
const SYSTEM_PYTHON = '/usr/bin/python3'

/** The torch runner script, found from this module in `dist/` or a build folder alike. */
export const TORCH_WORKER = join(packageRoot(), 'python', 'torch_worker.py')

/**
 * Finds the python that runs TorchScript: `configured` (BERTH_TORCH_PYTHON), else Debian's
 * `/usr/bin/python3`, if it can `import torch`. Checked once per interpreter (`import torch`
 * takes about a second). Throws `runtime_unavailable` saying how to install it.
 */
export class TorchPython {
  readonly #candidate: string
  readonly #configured: boolean
  #found: Promise<string> | undefined

  constructor(configured: string | undefined) {
    this.#candidate = configured ?? SYSTEM_PYTHON
    this.#configured = configured !== undefined
  }

  resolve(): Promise<string> {
    this.#found ??= new Promise((resolve, reject) => {
      execFile(this.#candidate, ['-c', 'import torch'], { timeout: 60_000 }, (err) => {
        if (err === null) return resolve(this.#candidate)
        // A deployment's message is shown to clients: the configured path is the operator's.
        const which = this.#configured ? 'the python3 BERTH_TORCH_PYTHON names' : SYSTEM_PYTHON
        reject(
          new BerthError(
            'runtime_unavailable',
            `TorchScript needs a python3 that can import torch, and ${which} cannot: install it with "apt-get install python3-torch libopenblas0-pthread" (Debian), or set BERTH_TORCH_PYTHON to a python3 that has torch`,
            { details: { runtime: 'torch' }, cause: err },
          ),
        )
      })
    })
    return this.#found
  }
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('berth: cannot find its package root')
    dir = parent
  }
  return dir
}
