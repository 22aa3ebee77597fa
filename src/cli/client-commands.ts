import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { type Deployment, WaitTimeout } from '@berth/client'
import type { Config } from '../config/config.js'
import { mixpeekStatus } from '../domain/deployment-state.js'
import { clientFor, usage } from './server-client.js'

export const CLIENT_USAGE = `  berth ls NAMESPACE                           the namespace's models and whether they are deployed
  berth deploy NAMESPACE MODEL_ID [--wait] [--reload]
                                                --wait prints each state change (on stderr)
  berth undeploy NAMESPACE MODEL_ID
  berth status [--json]                         the node's capacity and use, and your deployments on it
  berth infer NAMESPACE MODEL_ID [--data JSON | --file PATH]
                                                an Open Inference Protocol request; stdin when neither
  (each also takes [--url URL] [--api-key KEY])`

export const CLIENT_COMMANDS = ['ls', 'deploy', 'undeploy', 'infer', 'status'] as const
export type ClientCommand = (typeof CLIENT_COMMANDS)[number]

export function isClientCommand(command: string | undefined): command is ClientCommand {
  return (CLIENT_COMMANDS as readonly string[]).includes(command ?? '')
}

export interface ClientIo {
  /** Read when `berth infer` has neither `--data` nor `--file`. */
  readonly stdin: NodeJS.ReadableStream
  /** Where `berth deploy --wait` writes each state change, one line each; none when unset. */
  readonly progress?: NodeJS.WritableStream
}

/** How often `deploy --wait` reads the deployment, and for how long at most. */
const WATCH_EVERY_MS = 200
const WATCH_FOR_MS = 5 * 60_000

/**
 * `berth ls | deploy | undeploy | infer | status`: HTTP calls against a berth server, resolving
 * the server's JSON answer (`status`: a table, unless `--json`). Throws `cli_usage_invalid` for bad arguments and `ServerRefused`
 * (with the server's error envelope) when the server says no.
 */
export async function runClientCommand(
  argv: readonly string[],
  config: Config,
  io: ClientIo,
): Promise<Record<string, unknown> | string> {
  const [command, ...args] = argv
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(args)
  } catch (err) {
    throw usage(err instanceof Error ? err.message : String(err))
  }
  const { values, positionals } = parsed
  const client = await clientFor(config, { url: values.url, apiKey: values['api-key'] })
  const [namespace = '', modelId = ''] = positionals
  const needs = (count: number, shape: string) => {
    if (positionals.length !== count) throw usage(`berth ${command} needs ${shape}`)
  }
  switch (command) {
    case 'ls':
      needs(1, 'NAMESPACE')
      return client.listModels(namespace)
    case 'deploy': {
      needs(2, 'NAMESPACE MODEL_ID')
      const answer = await client.deploy(namespace, modelId, undefined, {
        reload: values.reload === true,
      })
      if (values.wait !== true) return answer
      const deployment = await watchDeployment(
        (onChange) =>
          client.waitForDeployment(namespace, modelId, {
            timeoutMs: WATCH_FOR_MS,
            intervalMs: WATCH_EVERY_MS,
            onChange,
          }),
        answer.deployment as Deployment,
        io.progress,
      )
      // As the server's own wait would answer: from where the deployment ended.
      const said = deployment.message === null ? '' : `: ${deployment.message}`
      return {
        ...answer,
        success: deployment.state !== 'failed',
        deployment_status: mixpeekStatus(deployment.state),
        message:
          answer.cached === true
            ? answer.message
            : `deployment ${deployment.state} (${deployment.reason})${said}`,
        deployment,
      }
    }
    case 'undeploy':
      needs(2, 'NAMESPACE MODEL_ID')
      return client.undeploy(namespace, modelId)
    case 'infer': {
      needs(2, 'NAMESPACE MODEL_ID')
      const text =
        values.data ??
        (values.file === undefined ? await readAll(io.stdin) : await readFile(values.file, 'utf8'))
      let body: unknown
      try {
        body = JSON.parse(text)
      } catch {
        throw usage('the inference request is not valid JSON')
      }
      // The server checks the request: the CLI passes it on as it is.
      return client.infer(namespace, modelId, body as Parameters<typeof client.infer>[2])
    }
    case 'status': {
      needs(0, 'no arguments')
      const view = await client.node()
      return values.json === true ? view : statusTable(view as unknown as NodeViewJson)
    }
    default:
      throw usage(`unknown command ${String(command)}`)
  }
}

/**
 * Waits for the deployment to settle (as the server's `?wait=true` would say: deployed, failed,
 * at rest as wanted, or waiting for capacity), writing each change of state or reason, from the
 * deploy's own answer on. Past the watch's bound it resolves where the deployment stood.
 */
async function watchDeployment(
  wait: (onChange: (deployment: Deployment) => void) => Promise<Deployment>,
  first: Deployment,
  progress: NodeJS.WritableStream | undefined,
): Promise<Deployment> {
  let last = ''
  const write = (d: Deployment) => {
    const line = `${d.state} (${d.reason})${d.message === null ? '' : `: ${d.message}`}`
    if (line !== last) progress?.write(`${line}\n`)
    last = line
  }
  write(first)
  try {
    return await wait(write)
  } catch (err) {
    if (err instanceof WaitTimeout) return err.deployment
    throw err
  }
}

interface NodeViewJson {
  readonly node: {
    readonly cpus: number
    readonly memory_bytes: number
    readonly gpus: number
    readonly reserved: {
      readonly cpus: number
      readonly memory_bytes: number
      readonly gpus: number
    }
  }
  readonly deployments: ReadonlyArray<{
    readonly namespace: string
    readonly model_id: string
    readonly state: string
    readonly reason: string
    readonly message: string | null
    readonly load_policy: string
    readonly replicas: number
    readonly resident_bytes: number | null
    readonly last_used_at: string | null
  }>
}

const MIB = 1024 ** 2

/** `berth status` for people: the node's lines, then one row per deployment. */
function statusTable(view: NodeViewJson): string {
  const { node } = view
  const mib = (bytes: number) => `${Math.round(bytes / MIB)} MiB`
  const lines = [
    `node: ${node.reserved.cpus}/${node.cpus} CPUs reserved, ${mib(node.reserved.memory_bytes)}/${mib(node.memory_bytes)} memory, ${node.reserved.gpus}/${node.gpus} GPUs`,
    '',
  ]
  const rows = [
    ['NAMESPACE', 'MODEL', 'STATE', 'REASON', 'POLICY', 'REPLICAS', 'RESIDENT', 'LAST USED'],
    ...view.deployments.map((d) => [
      d.namespace,
      d.model_id,
      d.state,
      d.message === null ? d.reason : `${d.reason}: ${d.message}`,
      d.load_policy,
      String(d.replicas),
      d.resident_bytes === null ? '-' : mib(d.resident_bytes),
      d.last_used_at ?? '-',
    ]),
  ]
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  for (const row of rows) {
    lines.push(
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
    )
  }
  return `${lines.join('\n')}\n`
}

function parse(args: readonly string[]) {
  return parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      wait: { type: 'boolean' },
      reload: { type: 'boolean' },
      data: { type: 'string' },
      file: { type: 'string' },
      url: { type: 'string' },
      'api-key': { type: 'string' },
      json: { type: 'boolean' },
    },
  })
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer))
  return Buffer.concat(chunks).toString('utf8')
}
