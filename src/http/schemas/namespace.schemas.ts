import { z } from 'zod'
import { NAMESPACE_DESCRIPTION_MAX, NAMESPACE_NAME_PATTERN } from '../../domain/namespace.js'
import { schemaRegistry } from './common.schemas.js'

export const CreateNamespaceBodySchema = z.object({
  namespace_name: z
    .string()
    .regex(NAMESPACE_NAME_PATTERN)
    .describe(
      '3–64 characters: a letter, then letters, digits, "_" or "-"; not starting with "ns_"',
    ),
  description: z.string().max(NAMESPACE_DESCRIPTION_MAX).nullable().optional(),
})
schemaRegistry.add(CreateNamespaceBodySchema, { id: 'CreateNamespaceRequest' })

export const NamespaceSchema = z.object({
  namespace_id: z.string().describe('ns_ followed by 20 hex digits'),
  namespace_name: z.string(),
  description: z.string().nullable(),
  created_at: z.string().describe('ISO-8601 date-time'),
  updated_at: z.string().describe('ISO-8601 date-time'),
})
schemaRegistry.add(NamespaceSchema, { id: 'Namespace' })

export const NamespaceListSchema = z.object({
  success: z.boolean(),
  namespaces: z.array(NamespaceSchema),
  total: z.number().int(),
})
schemaRegistry.add(NamespaceListSchema, { id: 'NamespaceListResponse' })

export const NamespaceDeleteSchema = z.object({
  success: z.boolean(),
  namespace_id: z.string(),
  message: z.string(),
})
schemaRegistry.add(NamespaceDeleteSchema, { id: 'NamespaceDeleteResponse' })

export const NamespaceParamsSchema = z.object({
  namespace: z.string().min(1).max(128).describe('Namespace id (ns_…) or name'),
})
