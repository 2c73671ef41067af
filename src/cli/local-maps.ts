// Pinned maps read straight from <state-dir>/maps, as `cilium bpf` reads bpffs: no agent needed.
// Everything is decoded by the map catalog, the same code the agent's API answers with.
import { LOCAL_IDENTITY_BASE } from '../dataplane/vocab/reserved-identities.ts';
import type { MapSummary } from '../control/types.ts';
import type { AnyMap, MapRegistry } from '../maps/index.ts';
import { dumpEntries, type DecodedMapEntry } from '../maps/cilium/index.ts';
import { CT_ANY_MAP, CT_TCP_MAP, ctListLines } from '../maps/cilium/ct.ts';
import { NAT_MAP, natListLines } from '../maps/cilium/nat.ts';
import { LB_BACKENDS_MAP, LB_REVNAT_MAP, LB_SERVICES_MAP, lbListRows } from '../maps/cilium/lb.ts';
import { IPCACHE_MAP, ipcacheDef } from '../maps/cilium/ipcache.ts';
import { decodeEntry, formatPolicyEntries, policyMapEndpoint, policyMapName } from '../maps/cilium/policy.ts';
import { CliError } from './errors.ts';

/**
 * One state directory's pinned maps, opened on first use: read-only (never initialised or
 * repaired) unless `writable`, which only a command that changes maps of a stopped agent asks for.
 */
export class PinnedMaps {
  private constructor(private readonly reg: MapRegistry, private readonly stateDir: string) {}

  /** Loads the native addon lazily: it is only needed when the agent is not asked. */
  static async open(stateDir: string, writable = false): Promise<PinnedMaps> {
    const [{ native }, { MapRegistry }] = await Promise.all([import('../native/index.ts'), import('../maps/index.ts')]);
    return new PinnedMaps(new MapRegistry(stateDir, native.mapFile, writable ? { sync: native.syncMap } : { readOnly: true }), stateDir);
  }

  names(): string[] {
    return this.reg.names();
  }

  map(name: string): AnyMap {
    if (!this.reg.names().includes(name)) throw new CliError(`map "${name}" not found in ${this.reg.dir} (wrong node? use --node or --state-dir)`);
    return this.reg.get(name) ?? this.reg.open(this.reg.specOnDisk(name));
  }

  list(): MapSummary[] {
    if (!this.reg.names().length) throw new CliError(`no pinned maps in ${this.reg.dir} (wrong node? use --node or --state-dir)`);
    this.reg.openAll();
    return this.reg.list();
  }

  entries(name: string): DecodedMapEntry[] {
    return dumpEntries(this.map(name));
  }

  ctLines(): string[] {
    return ctListLines([this.map(CT_TCP_MAP), this.map(CT_ANY_MAP)]);
  }

  /** `bpf ct flush global` on the files: empties both CT maps, returns how many entries went. */
  ctFlush(): number {
    const maps = [this.map(CT_TCP_MAP), this.map(CT_ANY_MAP)];
    const n = maps.reduce((sum, m) => sum + m.count, 0);
    for (const m of maps) {
      m.clear();
      m.flush();
    }
    return n;
  }

  natLines(): string[] {
    return natListLines(this.map(NAT_MAP));
  }

  /** `bpf nat flush` on the file: empties cilium_snat_v4_external, returns how many entries went. */
  natFlush(): number {
    const m = this.map(NAT_MAP);
    const n = m.count;
    m.clear();
    m.flush();
    return n;
  }

  lbRows(revnat: boolean): Array<[string, string]> {
    return lbListRows(this.map(LB_SERVICES_MAP), this.map(LB_BACKENDS_MAP), this.map(LB_REVNAT_MAP), revnat);
  }

  /** Endpoints that have a policy map, ascending. */
  policyEndpoints(): number[] {
    return this.reg.names().map(policyMapEndpoint).filter((id) => id !== undefined).sort((a, b) => a - b);
  }

  /** `bpf policy get ID`, labels resolved as the agent does: reserved, stored identities, CIDR prefixes. */
  async policyTable(endpointID: number, labels?: Map<number, string[]>): Promise<string> {
    const name = policyMapName(endpointID);
    if (!this.reg.names().includes(name)) throw new CliError(`endpoint ${endpointID} has no policy map (${name} not found in ${this.reg.dir})`);
    const ids = labels ?? (await this.identityLabels());
    return formatPolicyEntries(this.map(name).dump().map((e) => decodeEntry(e.key, e.value)), (id) => ids.get(id));
  }

  /** Identity → labels from what the agent left on disk: the local kvstore file and the ipcache. */
  async identityLabels(): Promise<Map<number, string[]>> {
    const [{ reservedIdentityLabels }, { IdentityAllocator }, { readStoreFile }] = await Promise.all([
      import('../policy/selector-cache.ts'), import('../identity/allocator.ts'), import('../control/kvstore-file.ts'),
    ]);
    const ids = new Map(reservedIdentityLabels());
    const stored = readStoreFile(this.stateDir);
    // Only list() is called: the allocator reads its own key layout out of the stored pairs.
    const snapshot = { list: async (prefix: string) => [...stored].filter(([k]) => k.startsWith(prefix)).map(([key, value]) => ({ key, value })) };
    for (const { id, labels } of await new IdentityAllocator(snapshot as never).list()) ids.set(id, labels);
    if (this.reg.names().includes(IPCACHE_MAP)) {
      for (const e of this.map(IPCACHE_MAP).dump()) {
        const { identity } = ipcacheDef.decodeValue(e.value);
        const { ip, prefixLen } = ipcacheDef.decodeKey(e.key);
        if (identity >= LOCAL_IDENTITY_BASE) ids.set(identity, [`cidr:${ip}/${prefixLen}`, 'reserved:world']);
      }
    }
    return ids;
  }
}
