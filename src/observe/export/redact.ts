// Flow redaction (hubble-redact-enabled): as Hubble without header allow/deny lists, every HTTP
// header value becomes HUBBLE_REDACTED; with hubble-redact-http-urlquery the query part of
// l7.http.url goes too. Returns a copy when it changes anything.
import type { Flow } from '../flow.ts';

export interface RedactOptions {
  enabled: boolean;
  httpUrlQuery: boolean;
}

/** Hubble's defaults.SensitiveValueRedacted. */
export const REDACTED = 'HUBBLE_REDACTED';

/** "http://h/p?a=1#f" → "http://h/p#f"; relative URLs ("/p?a=1") work too. */
export function stripUrlQuery(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const hash = url.indexOf('#', q);
  return url.slice(0, q) + (hash >= 0 ? url.slice(hash) : '');
}

export function redactFlow(f: Flow, o: RedactOptions): Flow {
  const http = f.l7?.http;
  if (!o.enabled || !http) return f;
  const redactUrl = o.httpUrlQuery && http.url.includes('?');
  if (!redactUrl && !http.headers?.length) return f;
  const url = redactUrl ? stripUrlQuery(http.url) : http.url;
  const headers = http.headers?.map((h) => ({ key: h.key, value: REDACTED }));
  // The summary line repeats the URL ("HTTP/1.1 GET http://...?token=..."): redact it there too.
  const Summary = redactUrl ? f.Summary?.split(http.url).join(url) : f.Summary;
  return { ...f, Summary, l7: { ...f.l7!, http: { ...http, url, ...(headers ? { headers } : {}) } } };
}
