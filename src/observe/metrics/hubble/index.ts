// Hubble metrics: the handlers `hubble-metrics` enables, fed one flow at a time.
import type { Flow } from '../../flow.ts';
import { openMetricsRegistry, type AnyRegistry } from '../exposition.ts';
import { createHandler, type Handler } from './handlers.ts';
import { parseMetricList } from './options.ts';

export { parseMetricList } from './options.ts';
export { flowProtocol } from './handlers.ts';

export class HubbleMetrics {
  readonly registry: AnyRegistry;
  readonly handlers: Handler[];
  /** Flows whose processing threw (a handler bug must not stop the flow pipeline). */
  errors = 0;

  /** The registry is an OpenMetrics one: prom-client only allows exemplars (httpV2:exemplars=true) there. */
  constructor(list: string, registry: AnyRegistry = openMetricsRegistry()) {
    this.registry = registry;
    const specs = parseMetricList(list);
    if (specs.some((s) => s.name === 'http') && specs.some((s) => s.name === 'httpV2')) {
      throw new Error('hubble-metrics: http and httpV2 cannot both be enabled');
    }
    this.handlers = specs.map((s) => createHandler(registry, s));
  }

  /** Names of the enabled handlers, e.g. for status output. */
  get enabled(): string[] {
    return this.handlers.map((h) => h.name);
  }

  processFlow(f: Flow): void {
    for (const h of this.handlers) {
      try {
        h.process(f);
      } catch {
        this.errors++;
      }
    }
  }
}
