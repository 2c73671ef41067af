// Maglev consistent hashing (Eisenbud et al., as Cilium's pkg/maglev): every backend gets a
// permutation of the table from two hashes of its name, and slots are filled round-robin from the
// permutations, so removing one backend moves only the slots it owned (plus a small remainder).

function hash32(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x5bd1e995);
    h ^= h >>> 15;
  }
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Table of backend ids of size m (prime); `names` identify backends stably (address:port). */
export function maglevTable(backends: Array<{ id: number; name: string }>, m: number, seed = 0x9e3779b9): Uint32Array {
  const table = new Uint32Array(m);
  if (backends.length === 0) return table;
  const sorted = [...backends].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const offset = sorted.map((b) => hash32(b.name, seed) % m);
  const skip = sorted.map((b) => (hash32(b.name, seed ^ 0xdeadbeef) % (m - 1)) + 1);
  const next = new Uint32Array(sorted.length);
  const filled = new Uint8Array(m);
  let n = 0;
  while (n < m) {
    for (let i = 0; i < sorted.length && n < m; i++) {
      let c = (offset[i] + next[i] * skip[i]) % m;
      while (filled[c]) {
        next[i]++;
        c = (offset[i] + next[i] * skip[i]) % m;
      }
      filled[c] = 1;
      table[c] = sorted[i].id;
      next[i]++;
      n++;
    }
  }
  return table;
}
