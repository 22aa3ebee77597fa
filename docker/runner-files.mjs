// Gathers what a runner container needs of a built berth, and nothing of the server: the files
// of dist/ that the runner (dist/runtime/worker-main.js) and its model fetcher
// (dist/runtime/fetch-model-main.js) import (transitively), and a package.json whose
// dependencies are the npm packages those files import, at the versions berth's package.json
// pins (npm prune then keeps only those and what they need).
//
//   node docker/runner-files.mjs SOURCE_ROOT DESTINATION
//
// Reads ES module imports as tsc writes them: `import … from '…'`, `export … from '…'`, bare
// `import '…'` and `import('…')` with a literal.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'

const [source, destination] = process.argv.slice(2)
if (source === undefined || destination === undefined) {
  process.stderr.write('usage: node docker/runner-files.mjs SOURCE_ROOT DESTINATION\n')
  process.exit(2)
}
const ENTRIES = ['dist/runtime/worker-main.js', 'dist/runtime/fetch-model-main.js']
const IMPORT =
  /^\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"\n]+)['"]|^\s*import\s*['"]([^'"\n]+)['"]|\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/gm

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
function packageOf(specifier) {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
}

const files = new Set()
const packages = new Set()
const pending = ENTRIES.map((entry) => resolve(source, entry))
while (pending.length > 0) {
  const file = pending.pop()
  if (files.has(file)) continue
  files.add(file)
  for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
    const specifier = match[1] ?? match[2] ?? match[3]
    if (specifier.startsWith('.')) pending.push(resolve(dirname(file), specifier))
    else if (!specifier.startsWith('node:') && !builtinModules.includes(specifier)) {
      packages.add(packageOf(specifier))
    }
  }
}

const manifest = JSON.parse(readFileSync(join(source, 'package.json'), 'utf8'))
const dependencies = {}
for (const name of [...packages].sort()) {
  const version = manifest.dependencies?.[name]
  if (version === undefined) {
    process.stderr.write(`the runner imports ${name}, which package.json does not depend on\n`)
    process.exit(1)
  }
  dependencies[name] = version
}

for (const file of files) {
  const target = join(destination, relative(source, file))
  mkdirSync(dirname(target), { recursive: true })
  copyFileSync(file, target)
}
// The name stays berth's, so that npm reads berth's lockfile as this package's.
const runner = {
  name: manifest.name,
  version: manifest.version,
  private: true,
  type: manifest.type,
  dependencies,
}
writeFileSync(join(destination, 'package.json'), `${JSON.stringify(runner, null, 2)}\n`)
process.stdout.write(
  `runner: ${files.size} files of dist/, packages ${Object.keys(dependencies).join(' ')}\n`,
)
