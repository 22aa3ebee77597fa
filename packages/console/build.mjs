// Bundles the console into dist/: index.html, console.js and console.css, which the server
// serves at /console. Run by `npm run build` (and so by `npm ci`, through the root's prepare).
import { copyFile, mkdir, rm } from 'node:fs/promises'
import { build } from 'esbuild'

const out = new URL('./dist/', import.meta.url)
await rm(out, { recursive: true, force: true })
await mkdir(out, { recursive: true })
await build({
  entryPoints: { console: 'src/main.tsx' },
  absWorkingDir: new URL('.', import.meta.url).pathname,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome111', 'firefox111', 'safari16.4'],
  minify: true,
  sourcemap: 'linked',
  outdir: 'dist',
  legalComments: 'linked',
  logLevel: 'warning',
})
await copyFile(new URL('./src/index.html', import.meta.url), new URL('index.html', out))
