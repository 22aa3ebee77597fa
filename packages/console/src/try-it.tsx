import { useState } from 'preact/hooks'
import { type Api, ApiError, dataOf, describeError, type ModelDetail } from './api.js'
import { ms } from './format.js'

type Mode = 'text' | 'tensors'

/** Text for a model with a task pipeline (a tokenizer), tensors for the others. */
function modeOf(model: ModelDetail): Mode {
  const hasTokenizer = model.manifest.huggingface !== undefined
  return hasTokenizer || (model.task_type !== null && model.input_schema === null)
    ? 'text'
    : 'tensors'
}

/** An Open Inference Protocol request for the model's inputs: zeros, dynamic sizes as 1. */
function tensorTemplate(model: ModelDetail): string {
  const inputs = (model.input_schema?.inputs ?? []).map((input) => {
    const shape = input.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1))
    const count = shape.reduce((a, b) => a * b, 1)
    const zero = input.datatype === 'BOOL' ? false : input.datatype === 'BYTES' ? '' : 0
    return { name: input.name, shape, datatype: input.datatype, data: Array(count).fill(zero) }
  })
  return JSON.stringify({ inputs }, null, 2)
}

export function TryIt(props: { api: Api; namespace: string; model: ModelDetail }) {
  const { api, namespace, model } = props
  const [mode, setMode] = useState<Mode>(() => modeOf(model))
  const [text, setText] = useState('berth serves models')
  const [tensors, setTensors] = useState(() => tensorTemplate(model))
  const [answer, setAnswer] = useState<{ body: string; ms: number } | undefined>()
  const [failure, setFailure] = useState<string | undefined>()
  const run = async (event: Event) => {
    event.preventDefault()
    setFailure(undefined)
    const started = performance.now()
    try {
      const body =
        mode === 'text'
          ? await dataOf(
              api.client.POST('/v1/inference', {
                headers: { 'X-Namespace': namespace },
                body: { inference_name: model.model_id, inputs: { text } },
              }),
            )
          : await dataOf(
              api.client.POST('/v1/namespaces/{namespace_id}/models/{model_id}/infer', {
                params: { path: { namespace_id: namespace, model_id: model.model_id } },
                body: parseTensors(tensors),
              }),
            )
      setAnswer({ body: JSON.stringify(body, null, 2), ms: performance.now() - started })
    } catch (err) {
      setAnswer(undefined)
      setFailure(describeError(err))
    }
  }
  return (
    <form class="try-it" onSubmit={run}>
      <h4>
        Try it
        <span class="modes">
          {(['text', 'tensors'] as const).map((m) => (
            <label key={m}>
              <input
                type="radio"
                name="mode"
                value={m}
                checked={mode === m}
                onChange={() => setMode(m)}
              />{' '}
              {m === 'text' ? 'Text' : 'Tensors (JSON)'}
            </label>
          ))}
        </span>
      </h4>
      {mode === 'text' ? (
        <textarea
          name="text"
          rows={3}
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
        />
      ) : (
        <textarea
          name="tensors"
          rows={8}
          spellcheck={false}
          value={tensors}
          onInput={(e) => setTensors(e.currentTarget.value)}
        />
      )}
      <button type="submit">Run</button>
      {failure !== undefined && (
        <p class="error" role="alert">
          {failure}
        </p>
      )}
      {answer !== undefined && (
        <div class="answer">
          <p class="latency">Answered in {ms(answer.ms)}</p>
          <pre>
            {answer.body.length > 20_000 ? `${answer.body.slice(0, 20_000)}…` : answer.body}
          </pre>
        </div>
      )}
    </form>
  )
}

function parseTensors(text: string) {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ApiError(0, 'json_invalid', `The tensors are not JSON: ${(err as Error).message}`)
  }
}
