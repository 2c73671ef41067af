// Conntrack lookup results as monitor, trace and Hubble name them (Cilium's CT_NEW … CT_REOPENED).
import { CT_ESTABLISHED, CT_NEW, CT_RELATED, CT_REPLY } from '../../maps/cilium/ct.ts';

export const CT_REOPENED = 4;

const NAMES: Record<number, string> = { [CT_NEW]: 'new', [CT_ESTABLISHED]: 'established', [CT_REPLY]: 'reply', [CT_RELATED]: 'related', [CT_REOPENED]: 'reopened' };

/** "new", "established", "reply", "related", "reopened"; undefined for other values. */
export const ctStateName = (state: number): string | undefined => NAMES[state];
