// fuguectl's command line: the global options, the parser (options may come
// before or after the command), --timeout's rule, and the usage text, all
// made from the command table.

import { COMMANDS } from './ctl-commands.js';
import { CTL_EXIT_MEANING } from './ctl-exit.js';
import { UsageError, type FlagSpec } from './ctl-command.js';

/** setTimeout's limit, in ms. */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/** Options every command takes. */
export const GLOBAL_FLAGS: Record<string, FlagSpec> = {
  socket: { value: 'PATH', doc: 'socket to use. Default: $FUGUE_SOCKET_PATH, else socket.path in the config files, else the server\'s default path' },
  config: { value: 'FILE', repeatable: true, doc: 'read socket.path from this config file, as fugue-server --config does (repeatable; later files win). Default: $FUGUE_CONFIG (comma-separated)' },
  timeout: { value: 'MS', doc: 'give up after MS milliseconds (decimal digits). Default: 5000; wait-ready: 30000; stop: 60000' },
  help: { doc: 'print this text' },
  version: { doc: 'print fuguectl\'s version' },
};

/** The usage text, made from COMMANDS and the global flags. */
export function usageText(): string {
  const cmds = Object.entries(COMMANDS).map(([name, c]) => {
    const flags = Object.entries(c.flags ?? {}).map(([f, s]) => ` [--${f}${s.value ? ` ${s.value}` : ''}]`).join('');
    const head = `  ${name}${c.args ? ` ${c.args}` : ''}${flags}`;
    const flagDocs = Object.entries(c.flags ?? {}).map(([f, s]) => `\n      --${f}${s.value ? ` ${s.value}` : ''}: ${s.doc}`).join('');
    return `${head}\n      ${c.summary}${flagDocs}`;
  });
  const opts = Object.entries(GLOBAL_FLAGS).map(([f, s]) => `  --${f}${s.value ? ` ${s.value}` : ''}`.padEnd(18) + s.doc);
  const exits = Object.entries(CTL_EXIT_MEANING).map(([code, meaning]) => `  ${code.padStart(2)}  ${meaning.replace(/`/g, '')}`);
  return [
    'Usage: fuguectl [--socket PATH] [--config FILE]... [--timeout MS] <command> [args]',
    '',
    'Commands:',
    ...cmds,
    '',
    'Options (before or after the command):',
    ...opts,
    '',
    'There is no reload command: reload the configuration with SIGHUP',
    '(systemctl reload fugue-server, or kill -HUP "$(cat SOCKET.pid)"); see docs/operations.md.',
    '',
    'Exit codes:',
    ...exits,
    '',
  ].join('\n');
}

/** A parsed command line. */
export interface Parsed {
  command: string | undefined;
  args: string[];
  flags: Map<string, string | true>;
  /** Every value of each repeatable option given, in order. */
  lists: Map<string, string[]>;
}

/** Split argv into the command, its arguments and the options given. Throws UsageError. */
export function parse(argv: readonly string[]): Parsed {
  // Which flags take a value, across the global ones and every command's.
  const known = new Map<string, FlagSpec>(Object.entries(GLOBAL_FLAGS));
  for (const c of Object.values(COMMANDS)) for (const [f, s] of Object.entries(c.flags ?? {})) known.set(f, s);
  const out: Parsed = { command: undefined, args: [], flags: new Map(), lists: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '-h') {
      out.flags.set('help', true);
      continue;
    }
    if (!a.startsWith('--') || a === '--') {
      if (out.command === undefined) out.command = a;
      else out.args.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq === -1 ? undefined : eq);
    const spec = known.get(name);
    if (spec === undefined) throw new UsageError(`unknown option --${JSON.stringify(name.slice(0, 64)).slice(1, -1)}`);
    if (spec.value === undefined) {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      out.flags.set(name, true);
    } else {
      const value = eq !== -1 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value (${spec.value})`);
      out.flags.set(name, value);
      if (spec.repeatable === true) out.lists.set(name, [...(out.lists.get(name) ?? []), value]);
    }
  }
  return out;
}

/** --timeout's value, or `fallback` when not given. Throws UsageError. */
export function timeoutOf(raw: string | true | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = typeof raw === 'string' && /^[0-9]+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= 1 && n <= MAX_TIMEOUT_MS)) throw new UsageError(`--timeout must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, got ${JSON.stringify(String(raw).slice(0, 64))}`);
  return n;
}
