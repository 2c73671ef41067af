// Prometheus text (0.0.4) and OpenMetrics (1.0.0) exposition of prom-client registries.
// prom-client's own OpenMetrics mode renames counters in place (it strips `_total` from the
// metric's name for good), so one registry cannot serve both formats; this renders from
// metric.get() and leaves the metrics alone.
import { Registry, type OpenMetricsContentType, type PrometheusContentType } from 'prom-client';

/** A registry of either content type (the content type only matters to prom-client's own rendering). */
export type AnyRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>;

/** An OpenMetrics-typed registry: prom-client accepts exemplars only there. */
export function openMetricsRegistry(): Registry<OpenMetricsContentType> {
  const r = new Registry<OpenMetricsContentType>();
  r.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  return r;
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

interface Exemplar {
  labelSet: Record<string, string | number>;
  value: number;
  timestamp?: number;
}

interface Sample {
  value: number;
  labels: Record<string, string | number | undefined>;
  metricName?: string;
  exemplar?: Exemplar | null;
}

interface Family {
  name: string;
  help: string;
  type: string;
  values?: Sample[];
}

/** True when the Accept header prefers OpenMetrics over the Prometheus text format. */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (!accept) return false;
  let om = -1;
  let text = -1;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().split(';').map((s) => s.trim());
    let q = 1;
    for (const p of params) {
      const m = /^q=([\d.]+)$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    const t = type.toLowerCase();
    if (t === 'application/openmetrics-text') om = Math.max(om, q);
    else if (t === 'text/plain' || t === '*/*' || t === 'text/*') text = Math.max(text, q);
  }
  return om > 0 && om >= text;
}

function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabel(v: unknown): string {
  return String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

function formatLabels(labels: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (v === undefined) continue;
    parts.push(`${k}="${escapeLabel(v)}"`);
  }
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** One family in either format (OpenMetrics: counter family names lose `_total`, samples keep it). */
function renderFamily(f: Family, openMetrics: boolean): string {
  const lines: string[] = [];
  const family = openMetrics && f.type === 'counter' ? f.name.replace(/_total$/, '') : f.name;
  lines.push(`# HELP ${family} ${escapeHelp(f.help)}`);
  lines.push(`# TYPE ${family} ${f.type}`);
  for (const s of f.values ?? []) {
    let name = s.metricName ?? f.name;
    if (openMetrics && f.type === 'counter' && !name.endsWith('_total')) name += '_total';
    let line = `${name}${formatLabels(s.labels)} ${formatValue(s.value)}`;
    if (openMetrics && s.exemplar && Object.keys(s.exemplar.labelSet ?? {}).length) {
      const ts = s.exemplar.timestamp !== undefined ? ` ${s.exemplar.timestamp}` : '';
      line += ` # ${formatLabels(s.exemplar.labelSet)} ${formatValue(s.exemplar.value)}${ts}`;
    }
    lines.push(line);
  }
  return lines.join('\n');
}

/** Renders the registries' metrics (collect callbacks run first, as prom-client's get() does). */
export async function render(registries: AnyRegistry[], openMetrics: boolean): Promise<string> {
  const families: Family[] = [];
  for (const r of registries) {
    for (const m of r.getMetricsAsArray()) {
      families.push((await (m as unknown as { get(): Promise<Family> }).get()) as Family);
    }
  }
  const body = families.map((f) => renderFamily(f, openMetrics));
  return openMetrics ? `${body.join('\n')}\n# EOF\n` : `${body.join('\n\n')}\n`;
}
