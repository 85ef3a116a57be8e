// How config values, keys and paths are shown in error messages. Whatever an
// operator (or an attacker) put in a file, env var or flag, a message shows at
// most a bounded preview of it, escaped (no raw control characters reach the
// terminal), with a note when it was cut (issue 13, point 5).

// Control characters, and lone UTF-16 surrogates (which no output encoding can carry).
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Longest preview of a value in a message, in characters (before the truncation note). */
export const MAX_PREVIEW_CHARS = 80;

/** Longest path or key shown whole in a message, in characters. */
export const MAX_NAME_CHARS = 200;

/**
 * A JSON-like rendering of `value` for an error message: at most
 * `maxChars` characters of it, then `... (truncated; N characters in all)`
 * when cut (N is a lower bound "more than N" when counting would be costly).
 * Never throws and never walks more of `value` than it needs: a huge string,
 * array or aliased YAML structure costs O(maxChars).
 */
export function preview(value: unknown, maxChars = MAX_PREVIEW_CHARS): string {
  const out: string[] = [];
  let used = 0;
  let cut = false;
  const put = (s: string): boolean => {
    if (used + s.length > maxChars) {
      out.push(s.slice(0, maxChars - used));
      used = maxChars;
      cut = true;
      return false;
    }
    out.push(s);
    used += s.length;
    return true;
  };
  // Recursion is bounded by the config nesting limit and by the budget.
  const walk = (v: unknown, depth: number): boolean => {
    if (depth > 8) return put('...');
    if (typeof v === 'string') return put(JSON.stringify(v.length > maxChars + 1 ? v.slice(0, maxChars + 1) : v));
    if (typeof v === 'number' || typeof v === 'boolean' || v === null) return put(String(v));
    if (typeof v === 'bigint') return put(`${v}n`);
    if (v === undefined) return put('undefined');
    if (Array.isArray(v)) {
      if (!put('[')) return false;
      for (let i = 0; i < v.length; i++) if (!(i === 0 || put(',')) || !walk(v[i], depth + 1)) return false;
      return put(']');
    }
    if (typeof v === 'object') {
      if (!put('{')) return false;
      let first = true;
      for (const k in v as object) {
        if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
        if (!(first || put(',')) || !put(`${JSON.stringify(k.length > maxChars ? k.slice(0, maxChars) : k)}:`) || !walk((v as Record<string, unknown>)[k], depth + 1)) return false;
        first = false;
      }
      return put('}');
    }
    return put(`<${typeof v}>`);
  };
  walk(value, 0);
  if (!cut) return out.join('');
  const size = typeof value === 'string' ? `${value.length} characters in all` : 'longer';
  return `${out.join('')}... (truncated; ${size})`;
}

/**
 * A path, key or other name for a message: as it is when short and printable,
 * else JSON-quoted (control characters escaped) and cut to `maxChars` with a note.
 */
export function showName(name: string, maxChars = MAX_NAME_CHARS): string {
  CONTROL_CHARS.lastIndex = 0;
  const printable = !CONTROL_CHARS.test(name);
  if (printable && name.length <= maxChars) return name;
  const shown = JSON.stringify(name.length > maxChars ? name.slice(0, maxChars) : name);
  return name.length > maxChars ? `${shown}... (truncated; ${name.length} characters in all)` : shown;
}

/** `text` with every control character (newlines too) and lone surrogate written as a JSON-style escape, so it cannot move the cursor, recolour a terminal or be mangled on output. */
export function escapeControls(text: string): string {
  return text.replace(CONTROL_CHARS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Line and column lookups in one text: the newlines are found once, each lookup is a binary search. */
export class LineIndex {
  readonly #text: string;
  #starts: number[] | undefined;

  constructor(text: string) {
    this.#text = text;
  }

  /** 1-based line and column (in UTF-16 units) of `offset`. */
  at(offset: number): { line: number; column: number } {
    const starts = (this.#starts ??= lineStarts(this.#text));
    const off = Math.min(Math.max(offset, 0), this.#text.length);
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] as number) <= off) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: off - (starts[lo] as number) + 1 };
  }
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}
