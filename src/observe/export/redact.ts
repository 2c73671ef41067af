// Flow redaction (hubble-redact-enabled with hubble-redact-http-urlquery): drops the query part of
// l7.http.url before a flow leaves the agent. Returns a copy when it changes anything.
import type { Flow } from '../flow.ts';

export interface RedactOptions {
  enabled: boolean;
  httpUrlQuery: boolean;
}

/** "http://h/p?a=1#f" → "http://h/p#f"; relative URLs ("/p?a=1") work too. */
export function stripUrlQuery(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const hash = url.indexOf('#', q);
  return url.slice(0, q) + (hash >= 0 ? url.slice(hash) : '');
}

export function redactFlow(f: Flow, o: RedactOptions): Flow {
  if (!o.enabled || !o.httpUrlQuery) return f;
  const http = f.l7?.http;
  if (!http || !http.url.includes('?')) return f;
  const url = stripUrlQuery(http.url);
  // The summary line repeats the URL ("HTTP/1.1 GET http://...?token=..."): redact it there too.
  const Summary = f.Summary?.split(http.url).join(url);
  return { ...f, Summary, l7: { ...f.l7!, http: { ...http, url } } };
}
