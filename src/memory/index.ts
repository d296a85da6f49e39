// Aligned buffer pools and process-wide memory budgets: public API for the daemon, the cache and the uploader.
export { DaemonMemory, MEMORY_DEFAULTS, type MemoryOptions, type MemoryUsage } from './memory.js';
export { CountedBudget, type BudgetUsage } from './budget.js';
export { AlignedPool, AlignedPools, DIRECT_ALIGN, alignDown, type PoolUsage } from './aligned.js';
export { MemoryTarget, MIN_BUFFER_BYTES, RUNTIME_BYTES, processRss, procStatusBytes, splitTarget, type TargetShares } from './target.js';
