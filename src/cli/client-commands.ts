import { readFile } from 'node:fs/promises'
import { type BerthClient, type Deployment, WaitTimeout } from '@berth/client'
import { mixpeekStatus } from '../domain/deployment-state.js'
import { fieldLines, mib, type Rendered, table } from './output.js'
import { usage } from './server-client.js'

/**
 * The commands that talk to a berth server, each through `@berth/client`: they resolve what to
 * print (JSON, and the same for people) and throw the client's errors (`BerthApiError` carries
 * the server's envelope) or `cli_usage_invalid`.
 */

/** How often `--wait` reads the deployment (for at most the client's 5 minutes). */
const WATCH_EVERY_MS = 200

type ModelList = Awaited<ReturnType<BerthClient['listModels']>>

export async function listModels(client: BerthClient, namespace: string): Promise<Rendered> {
  const answer = await client.listModels(namespace)
  return { json: answer, human: modelTable(answer) }
}

function modelTable(answer: ModelList): string {
  if (answer.models.length === 0) return 'no models\n'
  return table([
    ['MODEL', 'NAME', 'VERSION', 'FORMAT', 'TASK', 'DEPLOYED', 'CREATED'],
    ...answer.models.map((m) => [
      m.model_id,
      m.name,
      m.version,
      m.model_format,
      m.task_type ?? '-',
      m.deployed ? 'yes' : 'no',
      m.created_at,
    ]),
  ])
}

export async function deleteModel(
  client: BerthClient,
  namespace: string,
  modelId: string,
): Promise<Rendered> {
  const answer = await client.deleteModel(namespace, modelId)
  return { json: answer, human: `deleted ${namespace}/${modelId}\n` }
}

export interface DeployOptions {
  readonly wait?: boolean
  readonly reload?: boolean
  /** Serving settings to deploy with (a redeploy when they change). */
  readonly settings?: Parameters<BerthClient['deploy']>[2]
  /** Where each state change goes while waiting (one line each). */
  readonly progress?: NodeJS.WritableStream
}

export async function deploy(
  client: BerthClient,
  namespace: string,
  modelId: string,
  options: DeployOptions,
): Promise<Rendered> {
  const answer = await client.deploy(namespace, modelId, options.settings, {
    reload: options.reload === true,
  })
  if (options.wait !== true) return deployed(answer)
  const watched = await watch(
    client,
    namespace,
    modelId,
    answer.deployment as Deployment,
    options.progress,
  )
  return { ...deployed(settledAnswer(answer, watched.deployment)), failed: watched.failed }
}

/** `state (reason)`, and `: message` when there is one: how a deployment is said. */
function describeDeployment(d: Deployment): string {
  return `${d.state} (${d.reason})${d.message === null ? '' : `: ${d.message}`}`
}

/**
 * An answer as the server's own wait would give it, from where the deployment ended: `success`
 * false when it failed, its status and message from the deployment.
 */
export function settledAnswer<A extends object>(answer: A, deployment: Deployment) {
  const { cached, message } = answer as { cached?: boolean; message?: string }
  return {
    ...answer,
    success: deployment.state !== 'failed',
    deployment_status: mixpeekStatus(deployment.state),
    message: cached === true ? message : `deployment ${describeDeployment(deployment)}`,
    deployment,
  }
}

/** A deploy's or an undeploy's answer; for people, where the deployment stands. */
function deployed(answer: {
  readonly model_id: string
  readonly deployment_status: string
  readonly deployment?: unknown
  readonly [field: string]: unknown
}): Rendered {
  const d = answer.deployment as Deployment | undefined
  const detail =
    d === undefined ? '' : ` (${d.state}, ${d.reason}${d.message === null ? '' : `: ${d.message}`})`
  return { json: answer, human: `${answer.model_id}: ${answer.deployment_status}${detail}\n` }
}

export async function undeploy(
  client: BerthClient,
  namespace: string,
  modelId: string,
): Promise<Rendered> {
  return deployed(await client.undeploy(namespace, modelId))
}

/**
 * Waits for the deployment to settle (as the server's `?wait=true` would: deployed, failed, at
 * rest as wanted, or waiting for capacity), writing each change of state or reason from `first`
 * on. Past the client's bound (5 minutes) it resolves where the deployment stood; `failed` says
 * whether the wait ended in a failure or without settling (the command then exits 1).
 */
export async function watch(
  client: BerthClient,
  namespace: string,
  modelId: string,
  first: Deployment | undefined,
  progress: NodeJS.WritableStream | undefined,
): Promise<{ deployment: Deployment; failed: boolean }> {
  let last = ''
  const write = (d: Deployment) => {
    const line = describeDeployment(d)
    if (line !== last) progress?.write(`${line}\n`)
    last = line
  }
  if (first !== undefined) write(first)
  try {
    const deployment = await client.waitForDeployment(namespace, modelId, {
      intervalMs: WATCH_EVERY_MS,
      onChange: write,
    })
    return { deployment, failed: deployment.state === 'failed' }
  } catch (err) {
    if (err instanceof WaitTimeout) {
      progress?.write(`still ${err.deployment.state}: not waiting longer\n`)
      return { deployment: err.deployment, failed: true }
    }
    throw err
  }
}

export async function infer(
  client: BerthClient,
  namespace: string,
  modelId: string,
  request: { readonly data?: string | undefined; readonly file?: string | undefined },
  stdin: NodeJS.ReadableStream,
): Promise<Rendered> {
  const text =
    request.data ??
    (request.file === undefined ? await readAll(stdin) : await readFile(request.file, 'utf8'))
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw usage('the inference request is not valid JSON')
  }
  // The server checks the request: the CLI passes it on as it is.
  const answer = await client.infer(namespace, modelId, body as Parameters<BerthClient['infer']>[2])
  return { json: answer, human: `${JSON.stringify(answer, null, 2)}\n` }
}

type NodeView = Awaited<ReturnType<BerthClient['node']>>

export async function status(client: BerthClient): Promise<Rendered> {
  const view = await client.node()
  return { json: view, human: statusTable(view) }
}

/** `berth status` for people: the node's line, then one row per deployment. */
function statusTable(view: NodeView): string {
  const { node } = view
  const head = `node: ${node.reserved.cpus}/${node.cpus} CPUs reserved, ${mib(node.reserved.memory_bytes)}/${mib(node.memory_bytes)} memory, ${node.reserved.gpus}/${node.gpus} GPUs\n\n`
  return (
    head +
    table([
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
    ])
  )
}

export async function createNamespace(
  client: BerthClient,
  name: string,
  description: string | undefined,
): Promise<Rendered> {
  const answer = await client.createNamespace({
    namespace_name: name,
    ...(description === undefined ? {} : { description }),
  })
  return { json: answer, human: fieldLines(answer) }
}

export async function listNamespaces(client: BerthClient): Promise<Rendered> {
  const answer = await client.listNamespaces()
  const human =
    answer.namespaces.length === 0
      ? 'no namespaces\n'
      : table([
          ['NAME', 'ID', 'DESCRIPTION', 'CREATED'],
          ...answer.namespaces.map((n) => [
            n.namespace_name,
            n.namespace_id,
            n.description ?? '-',
            n.created_at,
          ]),
        ])
  return { json: answer, human }
}

export async function deleteNamespace(client: BerthClient, name: string): Promise<Rendered> {
  const answer = await client.deleteNamespace(name)
  return { json: answer, human: `deleted namespace ${name}\n` }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer))
  return Buffer.concat(chunks).toString('utf8')
}
