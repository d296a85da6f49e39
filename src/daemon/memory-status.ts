// The `memory` part of the daemon's status (and metrics): the target and where it came from, what each consumer
// holds, and the resident memory of both processes as the kernel counts it.
import { procStatusBytes, type DaemonMemory } from '../memory/index.js';
import type { MemoryTargetChoice } from './memory-target.js';
import type { MemoryStatus } from './status.js';

export function memoryStatus(choice: MemoryTargetChoice, memory: DaemonMemory, supervisorPid: number | undefined): MemoryStatus {
  const { pools, budgets } = memory.usage();
  const chunks = pools['cache.chunks'] ?? { takenBytes: 0, spareBytes: 0 };
  const parts = pools['upload.parts'] ?? { takenBytes: 0, spareBytes: 0 };
  const retained = budgets['cache.readAhead']?.used ?? 0;
  const js = process.memoryUsage();
  return {
    targetBytes: choice.bytes ?? null,
    targetSource: choice.source,
    cgroupLimitBytes: choice.cgroupLimitBytes ?? null,
    underPressure: memory.target.underPressure,
    rssBytes: procStatusBytes('self', 'VmRSS') ?? js.rss,
    peakRssBytes: procStatusBytes('self', 'VmHWM') ?? js.rss,
    supervisorRssBytes: supervisorPid === undefined ? null : (procStatusBytes(supervisorPid, 'VmRSS') ?? null),
    supervisorPrivateBytes: supervisorPid === undefined ? null : (procStatusBytes(supervisorPid, 'RssAnon') ?? null),
    consumers: {
      // Chunk buffers hold GETs in flight and retained chunks (kept for their readers); spares wait for reuse.
      'cache.fetches': Math.max(0, chunks.takenBytes - retained),
      'cache.retained': retained,
      'cache.spares': chunks.spareBytes,
      'upload.parts': parts.takenBytes,
      'upload.spares': parts.spareBytes,
      // Everything else the process holds in JS: objects (listings, nodes, trees' bookkeeping) and buffers outside
      // the pools (requests, replies, the embedded sample, manifests' arrays).
      'js.heap': js.heapUsed,
      'js.external': Math.max(0, js.external - chunks.takenBytes - chunks.spareBytes - parts.takenBytes - parts.spareBytes),
    },
  };
}
