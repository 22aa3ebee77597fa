import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

/**
 * The web console's built files (`packages/console/dist`, wherever npm placed the package), or
 * `undefined` when they are not built (a checkout built without `npm ci` or `npm run build`).
 */
export function consoleFiles(): string | undefined {
  try {
    const manifest = createRequire(import.meta.url).resolve('@berth/console/package.json')
    const root = join(dirname(manifest), 'dist')
    return existsSync(join(root, 'index.html')) ? root : undefined
  } catch {
    return undefined
  }
}
