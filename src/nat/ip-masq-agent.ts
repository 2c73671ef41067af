// The eBPF ip-masq-agent (Cilium's pkg/ipmasq): destinations in nonMasqueradeCIDRs keep the pod's
// address. The config file (YAML or JSON, as the real agent's /etc/config/ip-masq-agent) is read at
// start and again whenever it changes; a bad file is logged and the config in force stays.
import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { parse } from 'yaml';
import type { LpmTrieMap } from '../maps/index.ts';
import { ipMasqDef } from '../maps/cilium/nat.ts';
import { cidrProblem } from '../control/config.ts';
import { formatCidr, formatIPv4, parseCidr } from '../wire/ip-text.ts';

/** The real agent's defaults when the file lists no nonMasqueradeCIDRs (RFC 1918 and the other reserved ranges). */
export const DEFAULT_NON_MASQ_CIDRS = [
  '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '192.0.0.0/24', '192.0.2.0/24',
  '192.88.99.0/24', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '240.0.0.0/4',
];
export const LINK_LOCAL_CIDR = '169.254.0.0/16';

export interface IpMasqConfig {
  nonMasqueradeCIDRs: string[];
  masqLinkLocal: boolean;
}

/** Keys the real agent's file may carry; ones ciliary does not act on are accepted and ignored. */
const KNOWN_KEYS = new Set(['nonMasqueradeCIDRs', 'masqLinkLocal', 'masqLinkLocalIPv6', 'resyncInterval']);

/** Parses the file's text (YAML, so JSON too); throws an Error saying what is wrong. */
export function parseIpMasqConfig(text: string): IpMasqConfig {
  const doc: unknown = text.trim() === '' ? {} : parse(text);
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('expected a mapping with nonMasqueradeCIDRs and masqLinkLocal');
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN_KEYS.has(k)) throw new Error(`unknown key "${k}" (known: ${[...KNOWN_KEYS].join(', ')})`);
  const list = o.nonMasqueradeCIDRs ?? [];
  if (!Array.isArray(list)) throw new Error('nonMasqueradeCIDRs: expected a list of CIDRs');
  const cidrs = list.map((c, i) => {
    const problem = typeof c === 'string' ? cidrProblem(c) : 'is not a string';
    if (problem) throw new Error(`nonMasqueradeCIDRs[${i}]: ${JSON.stringify(c)} ${problem}`);
    return c as string;
  });
  const masqLinkLocal = o.masqLinkLocal ?? false;
  if (typeof masqLinkLocal !== 'boolean') throw new Error(`masqLinkLocal: ${JSON.stringify(masqLinkLocal)} is not true or false`);
  return { nonMasqueradeCIDRs: cidrs, masqLinkLocal };
}

/** The CIDRs that keep the pod's address: the file's list (or the defaults), and link-local unless masqLinkLocal. */
export function nonMasqueradeCidrs(c: IpMasqConfig): string[] {
  const list = c.nonMasqueradeCIDRs.length ? c.nonMasqueradeCIDRs : DEFAULT_NON_MASQ_CIDRS;
  const out = list.map((s) => formatCidr(parseCidr(s)));
  if (!c.masqLinkLocal && !out.includes(LINK_LOCAL_CIDR)) out.push(LINK_LOCAL_CIDR);
  return [...new Set(out)];
}

export class IpMasqAgent {
  /** The CIDRs in cilium_ipmasq_v4 now. */
  cidrs: string[] = [];
  private watcher?: FSWatcher;
  private lastText: string | undefined = undefined;
  private readonly key = new Uint8Array(ipMasqDef.keySize);
  private readonly one = Uint8Array.of(1);

  constructor(private readonly path: string, private readonly map: LpmTrieMap, private readonly log: Logger) {}

  /** Loads the file (absent: the defaults, as the real agent) and follows its changes. */
  start(): void {
    this.reload();
    const dir = dirname(this.path);
    if (!existsSync(dir)) {
      this.log.warn({ path: this.path }, `ip-masq-agent: ${dir} does not exist; its config is not followed`);
      return;
    }
    // The directory, not the file: a ConfigMap mount (or an editor) replaces the file.
    this.watcher = watch(dir, (_event, name) => {
      if (name === null || name === basename(this.path) || name.startsWith('..')) this.reload();
    });
    this.watcher.on('error', (e) => this.log.warn({ err: e.message }, 'ip-masq-agent: watching the config stopped'));
  }

  /** Reads the file again; a file that does not parse leaves the CIDRs in force. */
  reload(): void {
    let text: string;
    try {
      text = existsSync(this.path) ? readFileSync(this.path, 'utf8') : '';
    } catch (e) {
      this.log.error({ path: this.path, err: (e as Error).message }, 'ip-masq-agent: cannot read the config; keeping the one in force');
      return;
    }
    if (text === this.lastText) return;
    let cidrs: string[];
    try {
      cidrs = nonMasqueradeCidrs(parseIpMasqConfig(text));
    } catch (e) {
      this.log.error({ path: this.path, err: (e as Error).message }, 'ip-masq-agent: invalid config; keeping the one in force');
      return;
    }
    this.lastText = text;
    this.apply(cidrs);
    this.log.info({ path: this.path, nonMasqueradeCIDRs: cidrs }, 'ip-masq-agent: config loaded');
  }

  /** New prefixes first, then the gone ones: a destination listed in both configs never masquerades in between. */
  private apply(cidrs: string[]): void {
    for (const c of cidrs) this.write(c, true);
    for (const c of this.cidrs) if (!cidrs.includes(c)) this.write(c, false);
    this.cidrs = cidrs;
  }

  private write(cidr: string, add: boolean): void {
    const c = parseCidr(cidr);
    ipMasqDef.encodeKey({ ip: formatIPv4(c.base), prefixLen: c.bits }, this.key);
    if (add) this.map.update(this.key, 0, this.one, 0);
    else this.map.delete(this.key, 0);
  }

  close(): void {
    this.watcher?.close();
  }
}
