/** Update flags, as in bpf(2). */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

/** errno values; map operations return their negation, as the kernel does. */
export const ENOENT = 2;
export const E2BIG = 7;
export const EEXIST = 17;
export const EINVAL = 22;

/** Positive (success) result of update on an LRU map that had to evict to make room. */
export const UPDATED_EVICTED = 1;
