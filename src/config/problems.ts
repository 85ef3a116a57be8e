// Problems found while loading the configuration: how each is described
// (key, value, source, what is expected), how many are kept and shown, and
// the one FugueError that reports them all.

import { configFileInvalid, configInvalid, type FugueError } from '../errors.js';
import type { FileProblem, FileProblemKind } from './read-file.js';
import type { KeySpec } from './schema.js';
import { escapeControls, showName } from './text.js';

/** One thing wrong with the configuration, as reported in the error's `details.problems`. */
export interface ConfigProblem {
  /** The config key (or section) it is about, when it is about one. */
  key?: string;
  /** Where the value or file came from: "config file PATH, line N", "env FUGUE_X", "flag --x". */
  source: string;
  /** The config file, when the problem is in one. */
  file?: string;
  /** 1-based line in `file`, when known. */
  line?: number;
  /** The problem is with the file itself (unreadable, not UTF-8, not JSON/YAML...), not with one value. */
  fileLevel: boolean;
  /** For a file-level problem, which one. */
  problem?: FileProblemKind;
  /** The line shown to the operator: key, problem, value, source and what is expected. */
  message: string;
}

/** Problems listed in one error message; the rest are counted ("and 3 more"). */
export const MAX_PROBLEMS_SHOWN = 20;

/** Problems kept in `details.problems`; past this a hostile file's thousands of bad keys are only counted (`details.problemCount`). */
export const MAX_PROBLEMS_KEPT = 100;

/** Problems found so far: the first MAX_PROBLEMS_KEPT in full, the rest only counted. */
export class ProblemList {
  readonly items: ConfigProblem[] = [];
  length = 0;
  fileLevel = false;

  /** Add a problem; a function is called only if the problem is kept (its message may cost a "did you mean" search). */
  push(problem: ConfigProblem | (() => ConfigProblem)): void {
    this.length++;
    if (typeof problem !== 'function') this.fileLevel ||= problem.fileLevel;
    if (this.items.length < MAX_PROBLEMS_KEPT) this.items.push(typeof problem === 'function' ? problem() : problem);
  }
}

/** Where a value came from, for messages. */
export interface Source {
  label: string;
  file?: string;
  line?: number;
}

export function fileSource(file: string, line: number | undefined): Source {
  return line === undefined ? { label: `config file ${showName(file)}`, file } : { label: `config file ${showName(file)}, line ${line}`, file, line };
}

export function problemAt(source: Source, key: string | undefined, message: string): ConfigProblem {
  return { ...(key === undefined ? {} : { key }), source: source.label, ...(source.file === undefined ? {} : { file: source.file }), ...(source.line === undefined ? {} : { line: source.line }), fileLevel: false, message };
}

/**
 * The value an env var or flag (text, `raw`) gives `key`: converted as
 * docs/configuration.md says (spec.coerce), then checked (spec.format); or the
 * problem, naming the key, the value, `src` and what is expected.
 */
export function textSetting(key: string, spec: KeySpec, raw: string, src: Source): { value: unknown; problem?: undefined } | { problem: ConfigProblem } {
  const value = spec.coerce ? spec.coerce(raw) : raw;
  // Check here: convict would coerce a bad string itself ("lots" -> NaN, "nope" -> true).
  try {
    spec.format(value);
  } catch (err) {
    const how = spec.textForm !== undefined && typeof value === 'string' ? `; env vars and flags take ${spec.textForm}` : '';
    return { problem: problemAt(src, key, `${key}: ${(err as Error).message} (from ${src.label}; expected ${spec.unit ?? 'see docs'})${how}`) };
  }
  return { value };
}

/** The closest known name, for "did you mean": same letters in another case, or at most a third of the letters different. */
export function suggest(name: string, known: readonly string[]): string | undefined {
  if (name.length > 64) return undefined;
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const k of known) {
    if (k.toLowerCase() === lower) return k;
    const d = editDistance(lower, k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length] as number;
}

export function fileProblem(file: string, err: FileProblem): ConfigProblem {
  return { source: `config file ${showName(file)}`, file, fileLevel: true, problem: err.problem, message: `config file ${showName(file)}: ${err.message}` };
}

/** The error for a non-empty list of problems: FUGUE_ERR_CONFIG_FILE if a file itself is bad, else FUGUE_ERR_CONFIG_INVALID. */
export function problemsError(problems: ProblemList): FugueError {
  const items = problems.items;
  // Parser messages may quote raw source characters: escape every control character.
  for (const p of items) p.message = escapeControls(p.message);
  const shown = items.slice(0, MAX_PROBLEMS_SHOWN).map((p) => p.message);
  if (problems.length > shown.length) shown.push(`... and ${problems.length - shown.length} more problems`);
  const head = problems.length === 1 ? 'invalid configuration:' : `invalid configuration (${problems.length} problems):`;
  const message = `${head}\n  ${shown.join('\n  ')}\nFix ${problems.length === 1 ? 'it' : 'them'} (see docs/configuration.md) and try again.`;
  const first = items[0];
  const details = { problems: items, problemCount: problems.length, ...(first?.key === undefined ? {} : { key: first.key }), ...(first?.file === undefined ? {} : { file: first.file }) };
  return problems.fileLevel ? configFileInvalid(message, details) : configInvalid(message, details);
}

