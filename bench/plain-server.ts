/**
 * The floor to compare berth with for small models: a plain `node:http` server with
 * onnxruntime-node, the model run in the server's own process, Open Inference Protocol requests
 * in JSON or with binary tensors (`Inference-Header-Content-Length`), answered the same way.
 * FP32 inputs and outputs only; no checks, no queue, no isolation. Not part of berth. Any GET is
 * answered at once, without a body read or a model: what a request costs node:http alone.
 *
 *   node build/bench/plain-server.js MODEL.onnx      (prints "listening PORT")
 */
import { createServer } from 'node:http'
import * as ort from 'onnxruntime-node'

const HEADER_LENGTH = 'inference-header-content-length'

interface InputSpec {
  readonly name: string
  readonly shape: number[]
  readonly data?: number[]
  readonly parameters?: { readonly binary_data_size?: number }
}

const session = await ort.InferenceSession.create(process.argv[2] as string, {
  executionProviders: ['cpu'],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
})

const server = createServer((req, res) => {
  // Any GET: a request that does nothing, the floor of node:http itself.
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('{"status":"ok"}')
    return
  }
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    const body = Buffer.concat(chunks)
    const headerLength = req.headers[HEADER_LENGTH]
    const jsonEnd = headerLength === undefined ? body.length : Number(headerLength)
    const { inputs } = JSON.parse(body.subarray(0, jsonEnd).toString()) as { inputs: InputSpec[] }
    const feeds: Record<string, ort.Tensor> = {}
    let offset = jsonEnd
    for (const input of inputs) {
      const size = input.parameters?.binary_data_size
      let data: Float32Array
      if (size === undefined) data = Float32Array.from(input.data ?? [])
      else {
        data = new Float32Array(size / 4)
        new Uint8Array(data.buffer).set(body.subarray(offset, offset + size))
        offset += size
      }
      feeds[input.name] = new ort.Tensor('float32', data, input.shape)
    }
    session.run(feeds).then(
      (out) => {
        const entries = Object.entries(out)
        if (headerLength === undefined) {
          const outputs = entries.map(([name, t]) => ({
            name,
            datatype: 'FP32',
            shape: t.dims,
            data: Array.from(t.data as Float32Array),
          }))
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ outputs }))
          return
        }
        const header = Buffer.from(
          JSON.stringify({
            outputs: entries.map(([name, t]) => ({
              name,
              datatype: 'FP32',
              shape: t.dims,
              parameters: { binary_data_size: (t.data as Float32Array).byteLength },
            })),
          }),
        )
        const tensors = entries.map(([, t]) => {
          const d = t.data as Float32Array
          return Buffer.from(d.buffer, d.byteOffset, d.byteLength)
        })
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          [HEADER_LENGTH]: String(header.length),
        })
        res.end(Buffer.concat([header, ...tensors]))
      },
      (err: unknown) => {
        res.writeHead(500).end(String(err))
      },
    )
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  process.stdout.write(
    `listening ${typeof address === 'object' && address !== null ? address.port : 0}\n`,
  )
})
