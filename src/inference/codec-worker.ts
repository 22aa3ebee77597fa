import { parentPort } from 'node:worker_threads'
import { isBerthError } from '../errors/berth-error.js'
import { type CodecJob, type CodecResult, runJob, transferOf } from './json-codec.js'

// A worker thread of `JsonCodec`: decodes inference request bodies and encodes their answers,
// so the server's event loop (health checks, every other request) never waits for megabytes of
// JSON. Memory comes in and goes back transferred, not copied.

const port = parentPort
if (port === null) throw new Error('codec-worker.js runs as a worker thread')

port.on('message', (job: CodecJob) => {
  let result: CodecResult
  try {
    result = runJob(job)
  } catch (err) {
    result = isBerthError(err)
      ? { id: job.id, error: { code: err.code, message: err.message, details: err.details } }
      : { id: job.id, error: { code: 'internal_error', message: String(err) } }
  }
  port.postMessage(result, transferOf(result))
})
