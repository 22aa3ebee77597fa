/**
 * When a model's runners are loaded. `eager`: on deploy, and kept loaded (pinned) until
 * undeployed. `on_demand`: on the first request (or on deploy), unloaded again after
 * `idleTimeoutS` without requests, or evicted (least recently used first) when a load needs its
 * memory.
 */
export const LOAD_POLICIES = ['eager', 'on_demand'] as const
export type LoadPolicy = (typeof LOAD_POLICIES)[number]
