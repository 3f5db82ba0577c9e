/**
 * The API process's own memory, appended to /metrics when the API runs in
 * its own process. prom-client's process_* and nodejs_* series describe the
 * monitor (it renders the exposition); without these an operator could not
 * see the other half of `dropmon serve` grow. Rendered by prom-client in the
 * Prometheus text format, which is what the monitor's registry renders (no
 * "# EOF" to append after).
 */
import { Gauge, Registry } from 'prom-client';

const GAUGES = [
  ['resident_memory_bytes', 'Resident memory of the API process (HTTP, event streams, queries; an unprivileged user).', 'rss'],
  ['heap_used_bytes', "The API process's JavaScript heap in use (its main thread; query threads are in its resident memory).", 'heapUsed'],
  ['heap_total_bytes', "The API process's JavaScript heap reserved (its main thread).", 'heapTotal'],
  ['external_bytes', 'Memory of the API process held outside its JavaScript heap (buffers, SQLite answers in transit).', 'external'],
] as const;

export class ApiProcessMetrics {
  private readonly registry = new Registry();
  /** One reading per scrape, shared by the gauges. */
  private usage: NodeJS.MemoryUsage | undefined;

  constructor() {
    for (const [name, help, key] of GAUGES) {
      const read = (): number => (this.usage ??= process.memoryUsage())[key];
      new Gauge({
        name: `dropmon_api_process_${name}`,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    }
  }

  async render(): Promise<string> {
    this.usage = undefined;
    return this.registry.metrics();
  }
}
