// Public API of the policy library: parse, select, resolve, encode.
export { PolicyError } from './errors.ts';
export { parseLabel, parseLabelKey, formatLabel, labelMatches, type Label } from './labels.ts';
export { EndpointSelector, scopePeer, scopeSubject, POD_NAMESPACE_KEY, type LabelSelectorSpec, type Requirement, type SelectorOp } from './selector.ts';
export { parsePolicy, type SourceInfo } from './parse.ts';
export { portBlocks, blockContains, blockEnd, type PortBlock } from './ports.ts';
export { SelectorCache, LabelIdentitySelector, CidrSelector, ClusterSelector, reservedIdentityLabels, type IdentitySelector } from './selector-cache.ts';
export { PolicyRepository, policyKey } from './repository.ts';
export { covers } from './entries.ts';
export {
  POLICY_KEY_SIZE,
  POLICY_VALUE_SIZE,
  POLICY_STATIC_PREFIX,
  POLICY_FLAG_DENY,
  encodeKey,
  encodeValue,
  decodeEntry,
  formatPolicyEntries,
  formatPortProto,
  type DecodedPolicyEntry,
  type PolicyRow,
} from '../maps/cilium/policy.ts';
export * from './types.ts';
export { yamlLineMapper, pathSegments } from './yaml-lines.ts';
