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

const NAME = z
  .string()
  .regex(NAMESPACE_NAME_PATTERN)
  .describe('3–64 characters: a letter, then letters, digits, "_" or "-"; not starting with "ns_"')

/** Mixpeek's `ListNamespacesRequest`. */
export const ListNamespacesBodySchema = z
  .object({
    filters: z
      .record(z.string(), z.unknown())
      .nullish()
      .describe(
        'namespace_id, namespace_name, description, created_at, updated_at: a value, or {$eq|$ne|$in|$nin|$regex}',
      ),
    sort: z
      .record(z.string(), z.unknown())
      .nullish()
      .describe('{field, direction: asc|desc}; created_at ascending by default'),
    search: z.string().max(256).nullish().describe('a substring of the id, name or description'),
    case_sensitive: z.boolean().default(false),
  })
  .nullable()
  .optional()
schemaRegistry.add(ListNamespacesBodySchema, { id: 'ListNamespacesRequest' })

export const ListNamespacesQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(10),
  offset: z.coerce.number().int().min(0).max(10_000).optional(),
  cursor: z.string().optional().describe("the previous page's next_cursor"),
  include_total: z
    .enum(['true', 'false'])
    .optional()
    .describe('accepted; berth always counts (total_count is cheap here)'),
})

/** Mixpeek's `ListNamespacesResponse`. */
export const ListNamespacesResponseSchema = z.object({
  results: z.array(NamespaceSchema),
  pagination: z.object({
    total: z.number().int().nullable(),
    page: z.number().int().nullable(),
    page_size: z.number().int().nullable(),
    total_pages: z.number().int().nullable(),
    next_page: z.string().nullable(),
    previous_page: z.string().nullable(),
    next_cursor: z.string().nullable(),
    has_more: z.boolean(),
    limit: z.number().int(),
    skip: z.number().int(),
  }),
  total_count: z.number().int(),
  stats: z.null().describe('berth keeps no documents, buckets or collections: always null'),
})
schemaRegistry.add(ListNamespacesResponseSchema, { id: 'ListNamespacesResponse' })

/** Mixpeek's `PatchNamespaceRequest`: its index and infrastructure fields are accepted, unused. */
export const PatchNamespaceBodySchema = z.object({
  namespace_name: NAME.nullish(),
  description: z.string().max(NAMESPACE_DESCRIPTION_MAX).nullish(),
  payload_indexes: z.array(z.unknown()).nullish().describe('accepted; berth indexes nothing'),
  auto_create_indexes: z.boolean().nullish().describe('accepted; berth indexes nothing'),
  infrastructure: z.unknown().optional().describe('accepted; berth runs every namespace alike'),
})
schemaRegistry.add(PatchNamespaceBodySchema, { id: 'PatchNamespaceRequest' })

/** Mixpeek's `UpdateNamespaceRequest`: a rename (its payload indexes are accepted, unused). */
export const UpdateNamespaceBodySchema = z.object({
  namespace_name: NAME.nullish(),
  payload_indexes: z.array(z.unknown()).nullish().describe('accepted; berth indexes nothing'),
})
schemaRegistry.add(UpdateNamespaceBodySchema, { id: 'UpdateNamespaceRequest' })
