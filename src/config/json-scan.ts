// One linear pass over JSON text, run before JSON.parse, for what JSON.parse
// does not tell: how deep the nesting goes (checked before anything recursive
// touches the value), which keys repeat in one object (JSON.parse silently
// keeps the last one), and where each key is, for messages that name a line.
// On text that is not valid JSON the result is meaningless but the scan still
// ends without throwing; JSON.parse then reports the syntax error.

/** What a scan found. */
export interface JsonScan {
  /** Offset of the bracket that first went past `maxDepth`, or -1. */
  tooDeepAt: number;
  /** Keys repeated within one object: the object's dotted path, the key, and both offsets. */
  duplicates: Array<{ path: string; key: string; first: number; again: number }>;
  /** Offset of each key reached through objects only, by dotted path ("limits.maxClients"). */
  keys: Map<string, number>;
}

interface Frame {
  object: boolean;
  /** Dotted path of this container, or undefined below an array. */
  path: string | undefined;
  seen: Map<string, number> | undefined;
  expectKey: boolean;
  lastKey: string | undefined;
}

/** Scan `text`; stops at the first bracket deeper than `maxDepth` (the top-level value is depth 1). */
export function scanJson(text: string, maxDepth: number): JsonScan {
  const out: JsonScan = { tooDeepAt: -1, duplicates: [], keys: new Map() };
  const stack: Frame[] = [];
  const len = text.length;
  let i = 0;
  while (i < len) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (j < len) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) j += 2;
        else if (d === 0x22) break;
        else j++;
      }
      if (j >= len) return out; // unterminated: JSON.parse will say so
      const top = stack[stack.length - 1];
      if (top !== undefined && top.object && top.expectKey) {
        let key: string | undefined;
        try {
          key = JSON.parse(text.slice(i, j + 1)) as string;
        } catch {
          key = undefined;
        }
        if (key !== undefined) {
          const seen = (top.seen ??= new Map());
          const first = seen.get(key);
          if (first !== undefined) out.duplicates.push({ path: top.path ?? '', key, first, again: i });
          else seen.set(key, i);
          if (top.path !== undefined) out.keys.set(top.path === '' ? key : `${top.path}.${key}`, i);
        }
        top.lastKey = key;
        top.expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length + 1 > maxDepth) {
        out.tooDeepAt = i;
        return out;
      }
      const parent = stack[stack.length - 1];
      let path: string | undefined;
      if (parent === undefined) path = '';
      else if (parent.object && parent.path !== undefined && parent.lastKey !== undefined) path = parent.path === '' ? parent.lastKey : `${parent.path}.${parent.lastKey}`;
      stack.push({ object: c === 0x7b, path, seen: undefined, expectKey: c === 0x7b, lastKey: undefined });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top !== undefined && top.object) top.expectKey = true;
    }
    i++;
  }
  return out;
}
