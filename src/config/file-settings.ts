// Config files as fugue-server and fuguectl both read them: which files
// (`--config`, else FUGUE_CONFIG), each read (read-file.ts) and parsed
// (parse-file.ts) with hostile input bounded, then its settings checked key by
// key, every problem recorded with the file and line. One code path, so that
// fuguectl says exactly what the server says about a file.

import { parseConfigText, type ParsedConfigFile } from './parse-file.js';
import { fileProblem, fileSource, problemAt, suggest, type ProblemList, type Source } from './problems.js';
import { FileProblem, readConfigText } from './read-file.js';
import type { KeySpec } from './schema.js';
import { escapeControls, preview, showName } from './text.js';

/** The settings of one file that passed the checks, by section and key, for convict's `load()`. */
export type FileSettings = Record<string, Record<string, unknown>>;

/**
 * Read, parse and check `file`. Returns its good settings (every problem found
 * is added to `problems`, and where each accepted key came from to `sources`),
 * or undefined when the file itself cannot be used (also a problem).
 */
export function loadConfigFile(file: string, specs: Record<string, KeySpec>, problems: ProblemList, sources: Map<string, Source>): FileSettings | undefined {
  let parsed: ParsedConfigFile;
  try {
    parsed = parseConfigText(file, readConfigText(file));
  } catch (err) {
    // Anything but a FileProblem is a bug in the reader or a parser; it is
    // still this file's problem, exit 78 with a message, not a stack trace.
    const problem = err instanceof FileProblem ? err : new FileProblem('syntax', `fugue-server failed reading it (${escapeControls(String(err)).slice(0, 200)}); this is a bug: please report it with the file`);
    problems.push(fileProblem(file, problem));
    return undefined;
  }
  return checkFileSettings(parsed, file, specs, problems, sources);
}

// Check one file's settings: every unknown key, wrong shape and bad value is a
// problem (all of them, not just the first); the good values are returned, as
// a fresh object holding known keys only, for convict.
function checkFileSettings(parsed: ParsedConfigFile, file: string, specs: Record<string, KeySpec>, problems: ProblemList, sources: Map<string, Source>): FileSettings {
  const groups = [...new Set(Object.keys(specs).map((k) => k.split('.')[0] as string))];
  const accepted: FileSettings = {};
  for (const [group, value] of Object.entries(parsed.data)) {
    const at = fileSource(file, parsed.lineOf(group));
    if (!groups.includes(group)) {
      problems.push(() => {
        const guess = suggest(group, groups);
        return problemAt(at, group, `${showName(group)}: unknown section (in ${at.label}; ${guess ? `did you mean "${guess}"? ` : ''}the sections are ${groups.join(', ')}; see docs/configuration.md)`);
      });
      continue;
    }
    const keysHere = Object.keys(specs).filter((k) => k.startsWith(`${group}.`));
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      problems.push(() => problemAt(at, group, `${group}: must be a section holding keys such as ${keysHere[0]}, got ${preview(value)} (from ${at.label}; expected an object of ${keysHere.join(', ')})`));
      continue;
    }
    for (const [leaf, leafValue] of Object.entries(value)) {
      const key = `${group}.${leaf}`;
      const spec = specs[key];
      const src = fileSource(file, parsed.lineOf(key));
      if (spec === undefined) {
        problems.push(() => {
          const guess = suggest(key, keysHere);
          return problemAt(src, key, `${showName(key)}: unknown key (in ${src.label}; ${guess ? `did you mean ${guess}? ` : ''}known keys here: ${keysHere.join(', ')}; see docs/configuration.md)`);
        });
        continue;
      }
      // Files are typed: check before convict would coerce "100" to 100.
      try {
        spec.format(leafValue);
      } catch (err) {
        problems.push(() => problemAt(src, key, `${key}: ${(err as Error).message} (from ${src.label}; expected ${spec.unit ?? 'see docs'})`));
        continue;
      }
      (accepted[group] ??= {})[leaf] = leafValue;
      sources.set(key, src);
    }
  }
  return accepted;
}
