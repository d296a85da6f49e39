// Aligned buffer pools and process-wide memory budgets: public API for the daemon, the cache and the uploader.
export { DaemonMemory, MEMORY_DEFAULTS, type MemoryOptions, type MemoryUsage } from './memory.js';
export { CountedBudget, type BudgetUsage } from './budget.js';
export { AlignedPool, AlignedPools, DIRECT_ALIGN, alignDown, type PoolUsage } from './aligned.js';
