/**
 * What a user would write by hand: Fastify + onnxruntime-node, the model run on the event loop,
 * JSON in and out. The comparison point for bench/throughput.ts; not part of berth.
 *
 *   node build/bench/naive-server.js MODEL.onnx      (prints "listening PORT")
 */
import Fastify from 'fastify'
import * as ort from 'onnxruntime-node'

const session = await ort.InferenceSession.create(process.argv[2] as string, {
  executionProviders: ['cpu'],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
})
const app = Fastify({ bodyLimit: 64 * 1024 * 1024 })
app.post('/infer', async (request) => {
  const { inputs } = request.body as {
    inputs: Array<{ name: string; shape: number[]; datatype: string; data: number[] }>
  }
  const feeds: Record<string, ort.Tensor> = {}
  for (const input of inputs) {
    feeds[input.name] =
      input.datatype === 'INT64'
        ? new ort.Tensor('int64', BigInt64Array.from(input.data.map(BigInt)), input.shape)
        : new ort.Tensor('float32', Float32Array.from(input.data), input.shape)
  }
  const out = await session.run(feeds)
  return {
    outputs: Object.entries(out).map(([name, t]) => ({
      name,
      shape: t.dims,
      data: Array.from(t.data as Float32Array),
    })),
  }
})
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address()
process.stdout.write(
  `listening ${typeof address === 'object' && address !== null ? address.port : 0}\n`,
)
