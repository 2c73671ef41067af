// Map a validation path (`spec.ingress[0].toPorts[0].ports[0].port`) to its line in a YAML document.
import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

/** `a.b[0]["x.y"]` → ['a', 'b', 0, 'x.y']. */
export function pathSegments(path: string): Array<string | number> {
  const out: Array<string | number> = [];
  const re = /([^.[\]]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g;
  for (const m of path.matchAll(re)) out.push(m[1] ?? (m[2] !== undefined ? Number(m[2]) : (JSON.parse(m[3]) as string)));
  return out;
}

/** A `lines` function for parsePolicy: the 1-based line of the deepest node the path reaches (a key's own line for map fields). */
export function yamlLineMapper(doc: Document, lineCounter: LineCounter): (path: string) => number | undefined {
  return (path) => {
    let node: unknown = doc.contents;
    let at: number | undefined = (doc.contents as Node | null)?.range?.[0];
    for (const seg of pathSegments(path)) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
        if (!pair) break;
        at = (pair.key as Node | null)?.range?.[0] ?? at;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
        node = node.items[seg];
        at = (node as Node | null)?.range?.[0] ?? at;
      } else break;
    }
    return at === undefined ? undefined : lineCounter.linePos(at).line;
  };
}
