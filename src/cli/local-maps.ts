// Pinned maps read straight from <state-dir>/maps, as `cilium bpf` reads bpffs: no agent needed.
import { join } from 'node:path';
import type { MapEntryView, MapSummary } from '../control/types.ts';
import { CliError } from './errors.ts';

/** Loaded lazily: the native addon is only needed when the agent is not asked. */
async function registry(stateDir: string) {
  const [{ native }, { MapRegistry }] = await Promise.all([import('../native/index.ts'), import('../maps/index.ts')]);
  return new MapRegistry(stateDir, native.mapFile, { readOnly: true });
}

export async function listPinnedMaps(stateDir: string): Promise<MapSummary[]> {
  const reg = await registry(stateDir);
  if (!reg.names().length) throw new CliError(`no pinned maps in ${join(stateDir, 'maps')} (wrong node? use --node or --state-dir)`);
  reg.openAll();
  return reg.list();
}

export async function dumpPinnedMap(stateDir: string, name: string): Promise<MapEntryView[]> {
  const reg = await registry(stateDir);
  if (!reg.names().includes(name)) throw new CliError(`map "${name}" not found in ${reg.dir} (wrong node? use --node or --state-dir)`);
  const { formatterFor } = await import('../dataplane/map-defs.ts');
  const map = reg.open(reg.specOnDisk(name));
  const format = formatterFor(name);
  return map.dump().map(({ key, value }) => format(key, value));
}
