import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { DEPLOYMENT_STATES, DESIRED_STATES } from '../../domain/deployment-state.js'
import { LOAD_POLICIES } from '../../domain/load-policy.js'
import type { NamespaceService } from '../../namespaces/namespace-service.js'
import type { DeploymentService } from '../../registry/deployment-service.js'
import { principalOf } from '../authentication.js'
import { BEARER_AUTH, errorResponses } from '../schemas/common.schemas.js'

export interface NodeRoutesOptions {
  readonly deployments: Pick<DeploymentService, 'nodeView'>
  readonly namespaces: NamespaceService
}

const Resources = z.object({
  cpus: z.number(),
  memory_bytes: z.number().int(),
  gpus: z.number().int(),
})

export const NodeViewSchema = z.object({
  node: Resources.extend({
    reserved: Resources.describe('what deployments hold of it now (all organizations)'),
  }).describe('what this server offers deployments: CPUs after overcommit, memory, GPUs'),
  deployments: z
    .array(
      z.object({
        namespace_id: z.string(),
        namespace: z.string(),
        model_id: z.string(),
        state: z.enum(DEPLOYMENT_STATES),
        desired: z.enum(DESIRED_STATES as [string, ...string[]]),
        reason: z.string().describe('why it is in its state: for pending, why it waits'),
        since: z.string(),
        message: z.string().nullable(),
        load_policy: z.enum(LOAD_POLICIES),
        replicas: z.number().int().describe('runners serving it now'),
        processes: z
          .array(z.number().int())
          .describe(
            'pids of the runner processes serving it (a shared one serves other models too)',
          ),
        resident_bytes: z
          .number()
          .int()
          .nullable()
          .describe('memory its runners hold, last measured (its share in a shared process)'),
        charged_memory_bytes: z
          .number()
          .int()
          .describe('memory it is counted as against the node (0 when at rest)'),
        last_used_at: z.string().nullable(),
        active_requests: z.number().int().describe('queued, running or waiting for its load'),
      }),
    )
    .describe("the caller's organization's deployments this server has touched since it started"),
})

/**
 * `GET /v1/node`: this server's capacity and what holds it, and the caller's own deployments on
 * it (never another organization's). Behind the authentication hook.
 */
export const nodeRoutes: FastifyPluginAsyncZod<NodeRoutesOptions> = async (
  app,
  { deployments, namespaces },
) => {
  app.get(
    '/node',
    {
      schema: {
        tags: ['Node'],
        summary: "The node's capacity and use, and the caller's deployments on it",
        security: BEARER_AUTH,
        response: { 200: NodeViewSchema, ...errorResponses(401) },
      },
    },
    async (request) => {
      const own = await namespaces.list(principalOf(request))
      const names = new Map(own.map((ns) => [ns.id, ns.name]))
      const { usage, deployments: summaries } = deployments.nodeView(new Set(names.keys()))
      const resources = (r: { cpus: number; memoryBytes: number; gpus: number }) => ({
        cpus: r.cpus,
        memory_bytes: Math.round(r.memoryBytes),
        gpus: r.gpus,
      })
      return {
        node: { ...resources(usage), reserved: resources(usage.reserved) },
        deployments: summaries.map((s) => {
          const { deployment } = s.model
          return {
            namespace_id: s.model.namespaceId,
            namespace: names.get(s.model.namespaceId) ?? s.model.namespaceId,
            model_id: s.model.modelId,
            state: deployment.status.state,
            desired: deployment.desired,
            reason: deployment.status.reason,
            since: deployment.status.since,
            message: deployment.message,
            load_policy: s.model.serving.loadPolicy,
            replicas: s.runners.length,
            processes: [...s.processes],
            resident_bytes: s.residentBytes === undefined ? null : Math.round(s.residentBytes),
            charged_memory_bytes: Math.round(s.chargedMemoryBytes),
            last_used_at: s.lastUsed === undefined ? null : new Date(s.lastUsed).toISOString(),
            active_requests: s.activeRequests,
          }
        }),
      }
    },
  )
}
