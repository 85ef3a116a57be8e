// fuguectl: commands, options and exit codes (docs/operations.md, "fuguectl").
// The commands are one table (ctl-commands.ts); the command line is parsed from
// it (ctl-args.ts); this module finds the socket and runs one command, turning
// every failure into a one-line message and a stable exit code (ctl-exit.ts).

// Not load.js: fuguectl starts faster without convict (and yaml, loaded only for a config file).
import { tryExpandPath } from '../config/paths.js';
import { lookupSocketPath } from '../config/socket-lookup.js';
import { isFugueError, type FugueError } from '../errors.js';
import { VERSION } from '../version.js';
import { GLOBAL_FLAGS, parse, timeoutOf, usageText } from './ctl-args.js';
import { DEFAULT_TIMEOUT_MS, UsageError, type CtlIo } from './ctl-command.js';
import { COMMANDS } from './ctl-commands.js';
import { CTL_EXIT } from './ctl-exit.js';

export { CTL_EXIT, CTL_EXIT_MEANING } from './ctl-exit.js';
export { COMMANDS } from './ctl-commands.js';
export { usageText } from './ctl-args.js';
export type { CommandSpec, CtlContext, CtlIo } from './ctl-command.js';

// Nothing at the path: say where fuguectl took it from, which is what is wrong
// when a server started from a config file is looked for at the default path.
function whereFrom(err: FugueError, socketFrom: string | undefined): string {
  if (err.code !== 'FUGUE_ERR_CLIENT_CONNECT' || socketFrom === undefined || socketFrom === '--socket') return '';
  return ` (fuguectl took the socket path from ${socketFrom === 'default' ? 'the default: no --socket, FUGUE_SOCKET_PATH or config file (--config, FUGUE_CONFIG) named one' : socketFrom})`;
}

/**
 * Run fuguectl with `argv` (after the program name); resolves with the exit
 * code. Messages go to `io`; it never throws and never prints a stack trace.
 */
export async function runCtl(argv: readonly string[], io: CtlIo): Promise<number> {
  let socketFrom: string | undefined;
  try {
    const p = parse(argv);
    if (p.flags.has('help')) {
      io.stdout(usageText());
      return CTL_EXIT.OK;
    }
    if (p.flags.has('version')) {
      io.stdout(`${VERSION}\n`);
      return CTL_EXIT.OK;
    }
    if (p.command === undefined) throw new UsageError('missing command');
    const cmd = Object.prototype.hasOwnProperty.call(COMMANDS, p.command) ? COMMANDS[p.command] : undefined;
    if (cmd === undefined) throw new UsageError(`unknown command ${JSON.stringify(p.command.slice(0, 64))}; commands: ${Object.keys(COMMANDS).join(', ')}`);
    for (const name of p.flags.keys()) {
      if (!(name in GLOBAL_FLAGS) && !Object.prototype.hasOwnProperty.call(cmd.flags ?? {}, name)) throw new UsageError(`--${name} is not an option of ${p.command}`);
    }
    if (p.args.length < (cmd.minArgs ?? 0)) throw new UsageError(`${p.command} needs ${cmd.args ?? 'arguments'}`);
    if (cmd.maxArgs !== undefined && p.args.length > cmd.maxArgs) throw new UsageError(`${p.command} takes no argument ${JSON.stringify(p.args[cmd.maxArgs]?.slice(0, 64))}`);
    const timeoutMs = timeoutOf(p.flags.get('timeout'), cmd.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS);
    // Config files and FUGUE_* are checked even when --socket wins: what the server would refuse, fuguectl refuses too.
    const found = await lookupSocketPath({ files: p.lists.get('config') ?? [], env: io.env, cwd: io.cwd });
    const rawSocket = p.flags.get('socket');
    let socket = { path: found.path, from: found.from };
    if (typeof rawSocket === 'string') {
      const expanded = tryExpandPath(rawSocket, io.env, io.cwd);
      if (expanded.unset !== undefined) throw new UsageError(`the socket path ${JSON.stringify(rawSocket.slice(0, 200))} uses $${expanded.unset}, which is not set; set it or give --socket in full`);
      socket = { path: expanded.path, from: '--socket' };
    }
    socketFrom = socket.from;
    const flags = new Map([...p.flags].filter(([name]) => !(name in GLOBAL_FLAGS)));
    return await cmd.run({ socketPath: socket.path, socketFrom: socket.from, timeoutMs, args: p.args, flags, io });
  } catch (err) {
    if (err instanceof UsageError) {
      // With no command at all, the whole usage text helps more than a pointer to it.
      io.stderr(argv.length === 0 ? `fuguectl: ${err.message}\n${usageText()}` : `fuguectl: ${err.message}; run fuguectl --help for usage\n`);
      return CTL_EXIT.USAGE;
    }
    if (isFugueError(err)) {
      // One line: a configuration error's problems, one per line for the server, are joined.
      io.stderr(`fuguectl: ${err.message.split(/\n\s*/).join(' ')}${whereFrom(err, socketFrom)}\n`);
      return err.exitCode;
    }
    io.stderr(`fuguectl: internal error: ${String(err).replace(/\n/g, ' ').slice(0, 500)}; please report it\n`);
    return CTL_EXIT.SOFTWARE;
  }
}
