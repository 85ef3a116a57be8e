// Parse a config file's text as JSON or YAML, chosen by the file's extension,
// with the hostile shapes of each bounded (issue 9 point 6, issue 13 point 5):
//
// - nesting deeper than MAX_CONFIG_DEPTH is refused before any recursive code
//   (JSON.parse's consumers, yaml's composer, convict) sees the value;
// - duplicate keys are refused in both formats (JSON.parse alone would keep
//   the last one silently);
// - YAML: one document, the YAML 1.2 core schema whatever a %YAML directive
//   says, no custom or YAML 1.1 tags (!!binary, !!set, !foo...), no merge
//   keys, only scalar keys, and aliases bounded by MAX_YAML_ALIAS_COUNT so an
//   anchor/alias "billion laughs" file cannot expand.
//
// convict can parse files itself (`convict.addParser({extension, parse})` and
// `conf.loadFile()`), but loadFile reads with fs.readFileSync (no size bound,
// blocks on a FIFO) and addParser changes a registry global to the process.
// So files are read by read-file.ts and parsed here, and the plain object
// goes to `conf.load()`.

import { extname } from 'node:path';
import { createRequire } from 'node:module';
import type * as YamlModule from 'yaml';
import type { Document, ParsedNode } from 'yaml';

// The yaml package is loaded for a YAML file only: a JSON file (config/default.json
// is one) is read without it, and the server starts that much sooner.
let yamlModule: typeof YamlModule | undefined;
function yaml(): typeof YamlModule {
  yamlModule ??= createRequire(import.meta.url)('yaml') as typeof YamlModule;
  return yamlModule;
}
import { FileProblem } from './read-file.js';
import { scanJson } from './json-scan.js';
import { LineIndex } from './text.js';

/** Deepest nesting of objects and arrays in a config file (a fugue config needs 2: section, key). */
export const MAX_CONFIG_DEPTH = 32;

/** Most alias expansions a YAML config file may cause (yaml's `maxAliasCount`). */
export const MAX_YAML_ALIAS_COUNT = 100;

/**
 * Most lexical tokens (scalars, indicators, spaces, comments, line breaks) in a
 * YAML config file. The yaml package spends about 10 µs per token, so this
 * bounds the work at well under a second; a real config has a few hundred.
 */
export const MAX_YAML_TOKENS = 20_000;

/** The formats a config file may have; see {@link formatOf}. */
export type ConfigFormat = 'json' | 'yaml';

/** The format of a config file, by extension (case-insensitive): `.json`, `.yaml` or `.yml`. */
export function formatOf(path: string): ConfigFormat | undefined {
  const ext = extname(path).toLowerCase();
  return ext === '.json' ? 'json' : ext === '.yaml' || ext === '.yml' ? 'yaml' : undefined;
}

/** A parsed config file: its top-level object and where its keys are. */
export interface ParsedConfigFile {
  format: ConfigFormat;
  data: Record<string, unknown>;
  /** 1-based line of a key, "limits" or "limits.maxClients", when known. */
  lineOf(key: string): number | undefined;
}

/** Parse `text` (the contents of `path`) by the path's extension. Throws FileProblem. */
export function parseConfigText(path: string, text: string): ParsedConfigFile {
  const format = formatOf(path);
  if (format === undefined) {
    const ext = extname(path);
    throw new FileProblem('extension', `${ext === '' ? 'it has no extension' : `its extension ${JSON.stringify(ext.slice(0, 40))} is not one fugue-server reads`}; name it *.json for JSON or *.yaml / *.yml for YAML`);
  }
  return format === 'json' ? parseJson(text) : parseYaml(text);
}

function topLevel(value: unknown, format: ConfigFormat): Record<string, unknown> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
  const expected = format === 'json' ? 'a JSON object such as {"socket": {"path": "..."}}' : 'a mapping of sections to keys, such as "socket:" with "path: ..." indented below it';
  throw new FileProblem('top_level', `its top level is ${got}; it must be ${expected}`);
}

function parseJson(text: string): ParsedConfigFile {
  const lines = new LineIndex(text);
  const scan = scanJson(text, MAX_CONFIG_DEPTH);
  if (scan.tooDeepAt !== -1) {
    const { line, column } = lines.at(scan.tooDeepAt);
    throw new FileProblem('too_deep', `it nests objects or arrays more than ${MAX_CONFIG_DEPTH} levels deep (line ${line}, column ${column}); a fugue config has two levels, section and key`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // V8: "... in JSON at position 12" (Node 24 adds "(line 1 column 13)"): give line and column either way.
    const message = (err as Error).message.replace(/ \(line \d+ column \d+\)$/, '');
    const at = /at position (\d+)/.exec(message);
    const where = at ? (({ line, column }) => ` (line ${line}, column ${column})`)(lines.at(Number(at[1]))) : '';
    throw new FileProblem('syntax', `it is not valid JSON: ${message.slice(0, 200)}${where}`);
  }
  const data = topLevel(value, 'json');
  const dup = scan.duplicates[0];
  if (dup !== undefined) {
    const first = lines.at(dup.first).line;
    const again = lines.at(dup.again).line;
    const where = dup.path === '' ? 'at the top level' : `in "${dup.path.slice(0, 100)}"`;
    throw new FileProblem('duplicate_key', `key ${JSON.stringify(dup.key.slice(0, 100))} appears twice ${where} (lines ${first} and ${again}); JSON would keep only the last one: merge them`);
  }
  return { format: 'json', data, lineOf: (key) => (scan.keys.has(key) ? lines.at(scan.keys.get(key) as number).line : undefined) };
}

const YAML_OPTIONS = {
  schema: 'core',
  version: '1.2',
  merge: false,
  resolveKnownTags: false,
  stringKeys: true,
  // Checked below in linear time: yaml's own check compares every pair of keys
  // in a mapping (60 000 keys took two minutes).
  uniqueKeys: false,
  strict: true,
  prettyErrors: false,
} as const;

function collectionDepth(stack: readonly { type: string }[]): number {
  let n = 0;
  for (const t of stack) if (t.type === 'block-map' || t.type === 'block-seq' || t.type === 'flow-collection') n++;
  return n;
}

function parseYaml(text: string): ParsedConfigFile {
  const lines = new LineIndex(text);
  const parser = new (yaml().Parser)();
  const lineOfOffset = (offset: number) => lines.at(offset).line;
  // Drive yaml's lexer and parser (both iterative) one lexeme at a time and stop
  // as soon as the nesting is too deep: its composer is recursive, and a 1 MiB
  // file of "[" or "- " would otherwise take seconds and then the stack.
  function* tokens() {
    let count = 0;
    for (const lexeme of new (yaml().Lexer)().lex(text)) {
      if (++count > MAX_YAML_TOKENS) {
        const { line } = lines.at(parser.offset);
        throw new FileProblem('too_large', `it has more than ${MAX_YAML_TOKENS} YAML tokens (stopped at line ${line}); a fugue config has a few hundred: is it the right file?`);
      }
      yield* parser.next(lexeme);
      if (parser.stack.length > MAX_CONFIG_DEPTH && collectionDepth(parser.stack) > MAX_CONFIG_DEPTH) {
        const { line, column } = lines.at(parser.offset);
        throw new FileProblem('too_deep', `it nests mappings or sequences more than ${MAX_CONFIG_DEPTH} levels deep (line ${line}, column ${column}); a fugue config has two levels, section and key`);
      }
    }
    yield* parser.end();
  }
  const docs: Document.Parsed[] = [];
  for (const doc of new (yaml().Composer)(YAML_OPTIONS).compose(tokens(), true, text.length)) {
    docs.push(doc as Document.Parsed);
    if (docs.length > 1) break;
  }
  const doc = docs[0] as Document.Parsed;
  const where = (offset: number) => {
    const { line, column } = lines.at(offset);
    return `line ${line}, column ${column}`;
  };
  if (docs.length > 1) throw new FileProblem('syntax', `it holds more than one YAML document (a second "---" at ${where((docs[1] as Document.Parsed).range[0])}); put all settings in one document`);
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem !== undefined) {
    const hint = problem.code === 'TAG_RESOLVE_FAILED' ? '; config files use plain values only: remove the tag' : '';
    throw new FileProblem('syntax', `it is not valid YAML: ${problem.message.slice(0, 200)} (${where(problem.pos[0])})${hint}`);
  }
  if (doc.contents === null) return { format: 'yaml', data: {}, lineOf: () => undefined }; // empty, or comments only
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIAS_COUNT });
  } catch (err) {
    // ReferenceError: an alias before its anchor, or aliases expanding past maxAliasCount.
    const excessive = /Excessive alias count/.test((err as Error).message);
    throw new FileProblem('alias', excessive
      ? `its aliases expand to more than ${MAX_YAML_ALIAS_COUNT} copies of anchored values (an alias "bomb"?); write the values out instead`
      : `it is not valid YAML: ${(err as Error).message.slice(0, 200)}`);
  }
  const data = topLevel(value, 'yaml');
  const dup = firstDuplicateKey(doc.contents);
  if (dup !== undefined) throw new FileProblem('duplicate_key', `key ${JSON.stringify(dup.key.slice(0, 100))} appears twice in one mapping (lines ${lines.at(dup.first).line} and ${lines.at(dup.again).line}); each key may appear once: merge them`);
  const keyLines = new Map<string, number>();
  // Two levels are all a config has; deeper keys are reported by key, not by line.
  if (yaml().isMap(doc.contents)) {
    for (const pair of doc.contents.items) {
      const group = keyName(pair.key);
      if (group === undefined) continue;
      keyLines.set(group, lineOfOffset((pair.key as ParsedNode).range[0]));
      if (!yaml().isMap(pair.value)) continue;
      for (const leaf of pair.value.items) {
        const name = keyName(leaf.key);
        if (name !== undefined) keyLines.set(`${group}.${name}`, lineOfOffset((leaf.key as ParsedNode).range[0]));
      }
    }
  }
  return { format: 'yaml', data, lineOf: (key) => keyLines.get(key) };
}

// Depth is bounded by MAX_CONFIG_DEPTH, so the recursion is too.
function firstDuplicateKey(node: unknown): { key: string; first: number; again: number } | undefined {
  if (yaml().isMap(node)) {
    const seen = new Map<string, number>();
    for (const pair of node.items) {
      const name = keyName(pair.key);
      if (name !== undefined) {
        const at = (pair.key as ParsedNode).range[0];
        const first = seen.get(name);
        if (first !== undefined) return { key: name, first, again: at };
        seen.set(name, at);
      }
      const inner = firstDuplicateKey(pair.value);
      if (inner !== undefined) return inner;
    }
  } else if (yaml().isSeq(node)) {
    for (const item of node.items) {
      const inner = firstDuplicateKey(item);
      if (inner !== undefined) return inner;
    }
  }
  return undefined;
}

function keyName(key: unknown): string | undefined {
  return yaml().isScalar(key) ? String(key.value) : undefined;
}
