// The agent logger: JSON lines by default, pretty on request or on a terminal, debug from config.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, loggerFromConfig, usePretty } from '../../src/control/log.ts';

function sink(): { stream: Writable; text: () => string } {
  let buf = '';
  return { stream: new Writable({ write(chunk, _enc, cb) { buf += chunk; cb(); } }), text: () => buf };
}

describe('logger', () => {
  it('chooses pretty for pretty, or auto on a terminal', () => {
    expect(usePretty('pretty', false)).toBe(true);
    expect(usePretty('json', true)).toBe(false);
    expect(usePretty('auto', true)).toBe(true);
    expect(usePretty('auto', false)).toBe(false);
  });

  it('writes JSON lines, with debug only when configured', () => {
    const s = sink();
    const log = loggerFromConfig({ debug: false, 'log-format': 'json' }, s.stream);
    log.debug('hidden');
    log.info({ endpointID: 312 }, 'endpoint ready');
    const lines = s.text().trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, msg: 'endpoint ready', endpointID: 312, name: 'ciliary-agent' });
    const d = sink();
    createLogger({ debug: true, format: 'json', destination: d.stream }).debug('shown');
    expect(JSON.parse(d.text()).msg).toBe('shown');
  });

  it('writes readable lines when pretty', () => {
    const s = sink();
    createLogger({ format: 'pretty', destination: s.stream }).info({ pod: 'xwing' }, 'pod created');
    expect(s.text()).toMatch(/INFO.*pod created/);
    expect(s.text()).toContain('pod: "xwing"');
    expect(() => JSON.parse(s.text())).toThrow();
  });
});
