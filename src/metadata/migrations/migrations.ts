import type { Migration } from 'kysely'
import { initial } from './0001-initial.js'
import { models } from './0002-models.js'
import { deployments } from './0003-deployments.js'
import { serving } from './0004-serving.js'
import { replicas } from './0005-replicas.js'
import { orgModels } from './0006-org-models.js'
import { deployGeneration } from './0007-deploy-generation.js'
import { archiveUrls } from './0008-archive-urls.js'
import { loadPolicy } from './0009-load-policy.js'
import { inferenceHourly } from './0010-inference-hourly.js'
import { nodeSelector } from './0011-node-selector.js'

/**
 * Every schema migration, in order. Names sort lexically; never rename or edit a released
 * migration, add a new one.
 */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001-initial': initial,
  '0002-models': models,
  '0003-deployments': deployments,
  '0004-serving': serving,
  '0005-replicas': replicas,
  '0006-org-models': orgModels,
  '0007-deploy-generation': deployGeneration,
  '0008-archive-urls': archiveUrls,
  '0009-load-policy': loadPolicy,
  '0010-inference-hourly': inferenceHourly,
  '0011-node-selector': nodeSelector,
}
