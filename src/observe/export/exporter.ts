// The flow exporter (hubble-export-file-path): flows as `hubble observe -o json` lines
// ({"flow":{...},"node_name":"...","time":"..."}) appended to a size-rotated file. onFlow() only
// filters, serialises and queues; a bounded queue is written in the background, and when the
// writer falls behind or the file cannot be written, lines are dropped and counted — the
// exporter never throws into the flow pipeline and never stops the agent.
import { Counter } from 'prom-client';
import type { AnyRegistry } from '../metrics/exposition.ts';
import type { Flow } from '../flow.ts';
import { applyFilters, compileFilters, parseFilterList, type FilterSet } from './filter.ts';
import { applyFieldMask, parseFieldMask, type FieldMask } from './fieldmask.ts';
import { redactFlow, type RedactOptions } from './redact.ts';
import { RotatingFile } from './rotating-file.ts';

export interface LogLike {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ExporterOptions {
  path: string;
  nodeName: string;
  maxSizeMB?: number;
  /** Overrides maxSizeMB (tests). */
  maxSizeBytes?: number;
  maxBackups?: number;
  /** JSON flow filter lists, as the config keys take them. */
  allowlist?: string;
  denylist?: string;
  fieldMask?: string | string[];
  redact?: RedactOptions;
  /** Lines waiting for the writer before new ones are dropped. */
  queueSize?: number;
  /** Wait after a failed open/write before trying the file again. */
  retryMs?: number;
  registry?: AnyRegistry;
  log?: LogLike;
}

const LOG_EVERY_MS = 30_000;

export class FlowExporter {
  private readonly file: RotatingFile;
  private readonly filters: FilterSet;
  private readonly mask: FieldMask;
  private readonly redact: RedactOptions;
  private readonly queueSize: number;
  private readonly retryMs: number;
  private queue: string[] = [];
  private writing?: Promise<void>;
  private retryTimer?: NodeJS.Timeout;
  private retryAt = 0;
  private closed = false;
  private lastLog = new Map<string, number>();
  private readonly mWritten?: Counter<string>;
  private readonly mDropped?: Counter<'reason'>;
  private readonly mErrors?: Counter<'operation'>;
  readonly stats = { exported: 0, filtered: 0, dropped: 0, errors: 0 };

  constructor(private readonly o: ExporterOptions) {
    const maxSize = o.maxSizeBytes ?? Math.max(1, o.maxSizeMB ?? 10) * 1024 * 1024;
    this.file = new RotatingFile(o.path, { maxSize, maxBackups: o.maxBackups ?? 5 });
    this.filters = compileFilters(parseFilterList(o.allowlist ?? '', 'hubble-export-allowlist'), parseFilterList(o.denylist ?? '', 'hubble-export-denylist'));
    this.mask = parseFieldMask(o.fieldMask ?? '');
    this.redact = o.redact ?? { enabled: false, httpUrlQuery: false };
    this.queueSize = o.queueSize ?? 8192;
    this.retryMs = o.retryMs ?? 1000;
    if (o.registry) {
      const registers = [o.registry];
      this.mWritten = new Counter({ name: 'hubble_export_flows_total', help: 'Flows written by the flow exporter', registers });
      this.mDropped = new Counter({ name: 'hubble_export_flows_dropped_total', help: 'Flows the exporter dropped (queue_full: the writer was behind; write_error: the file could not be written)', labelNames: ['reason'], registers });
      this.mErrors = new Counter({ name: 'hubble_export_errors_total', help: 'Failed file operations of the flow exporter', labelNames: ['operation'], registers });
    }
  }

  /** Filters, redacts, masks and queues one flow; never throws. */
  onFlow(f: Flow): void {
    if (this.closed) return;
    try {
      if (!applyFilters(this.filters, f)) {
        this.stats.filtered++;
        return;
      }
      if (this.queue.length >= this.queueSize) {
        this.drop('queue_full', 1);
        return;
      }
      const flow = applyFieldMask(redactFlow(f, this.redact), this.mask);
      this.queue.push(`${JSON.stringify({ flow, node_name: f.node_name || this.o.nodeName, time: f.time })}\n`);
      this.schedule();
    } catch (e) {
      this.error('serialize', e as Error);
    }
  }

  /** Resolves once everything queued so far was written (or dropped). */
  async flush(): Promise<void> {
    while (this.writing || (this.queue.length && !this.retryTimer)) {
      if (!this.writing) this.schedule();
      await this.writing;
    }
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    this.drop('write_error', this.queue.length); // still waiting for a file that cannot be written
    this.queue = [];
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.file.close();
  }

  private schedule(): void {
    if (this.writing || this.retryTimer || this.queue.length === 0) return;
    const wait = this.retryAt - Date.now();
    if (wait > 0) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.schedule();
      }, wait);
      this.retryTimer.unref();
      return;
    }
    // Start on the next turn, so flows arriving together are written together.
    this.writing = new Promise<void>((r) => setImmediate(r)).then(() => this.drain()).finally(() => {
      this.writing = undefined;
      if (!this.closed) this.schedule();
    });
  }

  /** Writes the queue in chunks that never straddle a rotation. */
  private async drain(): Promise<void> {
    const lines = this.queue;
    this.queue = [];
    let i = 0;
    try {
      await this.file.openExisting().catch((e) => { throw Object.assign(e as Error, { operation: 'open' }); });
      while (i < lines.length) {
        let room = this.file.remaining;
        if (Buffer.byteLength(lines[i]) > room) room = this.file.maxSize; // the next write rotates first
        const chunk: string[] = [];
        let bytes = 0;
        while (i < lines.length) {
          const n = Buffer.byteLength(lines[i]);
          if (n > this.file.maxSize) { // one flow bigger than a whole file: cannot be written
            if (chunk.length) break;
            i++;
            this.drop('write_error', 1);
            this.error('write', new Error(`flow of ${n} bytes exceeds the maximum file size`));
            continue;
          }
          if (bytes + n > room) break;
          chunk.push(lines[i]);
          bytes += n;
          i++;
        }
        if (chunk.length === 0) continue;
        await this.file.write(Buffer.from(chunk.join('')));
        this.stats.exported += chunk.length;
        this.mWritten?.inc(chunk.length);
      }
    } catch (e) {
      const err = e as Error & { operation?: string };
      this.drop('write_error', lines.length - i);
      this.error(err.operation ?? 'write', err);
      await this.file.close();
      this.retryAt = Date.now() + this.retryMs;
    }
  }

  private drop(reason: string, n: number): void {
    if (n <= 0) return;
    this.stats.dropped += n;
    this.mDropped?.inc({ reason }, n);
  }

  private error(operation: string, e: Error): void {
    this.stats.errors++;
    this.mErrors?.inc({ operation });
    const now = Date.now();
    const last = this.lastLog.get(operation) ?? 0;
    if (now - last < LOG_EVERY_MS) return;
    this.lastLog.set(operation, now);
    this.o.log?.warn({ path: this.o.path, operation, err: e.message, errors: this.stats.errors, dropped: this.stats.dropped }, 'flow exporter: cannot write flow log; dropping flows');
  }
}
