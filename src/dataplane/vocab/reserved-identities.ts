// Cilium's reserved security identities (pkg/identity/numericidentity.go): number, name and label.

/** The reserved identities a policy can name as entities. */
export const RESERVED_IDENTITIES = {
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  'remote-node': 6,
  'kube-apiserver': 7,
  ingress: 8,
} as const;
export type ReservedIdentityName = keyof typeof RESERVED_IDENTITIES;

export const IDENTITY_UNKNOWN = 0;

/** Node-local identities (CIDR, FQDN) start here (Cilium's identity.IdentityScopeLocal). */
export const LOCAL_IDENTITY_BASE = 1 << 24;

/** Every name identity.NumericIdentity.String() gives a reserved number (the dual-stack worlds too). */
const NAME_BY_ID: Record<number, string> = {
  [IDENTITY_UNKNOWN]: 'unknown',
  ...Object.fromEntries(Object.entries(RESERVED_IDENTITIES).map(([name, id]) => [id, name])),
  9: 'world-ipv4',
  10: 'world-ipv6',
};
const ID_BY_NAME: Record<string, number> = Object.fromEntries(Object.entries(NAME_BY_ID).map(([id, name]) => [name, Number(id)]));

/** "host", "world", …; undefined for an identity that is not reserved. */
export const reservedIdentityName = (id: number): string | undefined => NAME_BY_ID[id];

/** The number of a reserved name ("unknown" is 0); undefined for other names. */
export const reservedIdentityByName = (name: string): number | undefined => ID_BY_NAME[name];

/** Reserved names a user may type for an identity (every one but "unknown"). */
export const RESERVED_IDENTITY_NAMES: readonly string[] = Object.keys(ID_BY_NAME).filter((n) => n !== 'unknown');

/** An identity as cilium monitor prints it: the reserved name, else the number. */
export const identityName = (id: number): string => NAME_BY_ID[id] ?? String(id);

/** The label of a reserved identity ("reserved:host"); undefined for others and for 0. */
export function reservedLabel(id: number): string | undefined {
  const name = id === IDENTITY_UNKNOWN ? undefined : NAME_BY_ID[id];
  return name && `reserved:${name}`;
}
