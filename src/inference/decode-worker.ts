import { parentPort } from 'node:worker_threads'
import { isBerthError } from '../errors/berth-error.js'
import { type DecodeJob, type DecodeResult, decodeBody } from './json-decoder.js'

// A worker thread of `JsonDecoder`: decodes inference request bodies, so the server's event loop
// (health checks, every other request) never waits for a JSON.parse of megabytes. The body comes
// in transferred, and the decoded tensors go back transferred: nothing is copied either way.

const port = parentPort
if (port === null) throw new Error('decode-worker.js runs as a worker thread')

port.on('message', ({ id, body, headerLength }: DecodeJob) => {
  let result: DecodeResult
  let transfer: ArrayBuffer[] = []
  try {
    const decoded = decodeBody(
      Buffer.from(body.buffer, body.byteOffset, body.byteLength),
      headerLength,
    )
    result = { id, ...decoded }
    if ('request' in decoded) {
      transfer = [...new Set(decoded.request.inputs.map((t) => t.data.buffer as ArrayBuffer))]
    }
  } catch (err) {
    result = isBerthError(err)
      ? { id, error: { code: err.code, message: err.message, details: err.details } }
      : { id, error: { code: 'internal_error', message: String(err) } }
  }
  port.postMessage(result, transfer)
})
