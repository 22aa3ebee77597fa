import { isBerthError } from '../errors/berth-error.js'
import { type FetchOrder, fetchModel } from './model-fetch.js'

// Fetches a model for a runner written in another language (berth's python runner): reads
// `{"archive": FetchOrder, "scratch": DIR}` as JSON on stdin, fetches and unpacks the archive
// under DIR as the Node runner does, and prints one line of JSON: `{"root", "dir"}` (the files'
// folder, and the folder to delete with the model), or `{"error": {"code", "message"}}` and
// exits 1.

interface Order {
  readonly archive: FetchOrder
  readonly scratch: string
}

const chunks: Buffer[] = []
for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
try {
  const order = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Order
  const fetched = await fetchModel(order.archive, order.scratch)
  process.stdout.write(`${JSON.stringify({ root: fetched.root, dir: fetched.dir })}\n`)
} catch (err) {
  const error = isBerthError(err)
    ? { code: err.code, message: err.message }
    : { code: 'model_load_failed', message: `the model could not be fetched: ${String(err)}` }
  process.stdout.write(`${JSON.stringify({ error })}\n`)
  process.exitCode = 1
}
