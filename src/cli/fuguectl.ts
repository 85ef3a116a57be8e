#!/usr/bin/env node
// fuguectl: talk to a running fugue-server. Exit 0 on success; 69 when no server
// answers; 76 on a protocol error; 64 on bad usage.

import { FugueClient } from '../client/client.js';
import { defaultSocketPath } from '../config/load.js';
import { expandPath } from '../config/paths.js';
import { EXIT, isFugueError } from '../errors.js';

const USAGE = `Usage: fuguectl [--socket PATH] [--timeout MS] <command>

Commands:
  ping          check that the server answers (prints the round-trip time)
  status        print the server's status as JSON
  echo TEXT     send TEXT and print what comes back

Options:
  --socket PATH   socket to use (default: $FUGUE_SOCKET_PATH, else the server's default path)
  --timeout MS    give up after MS milliseconds (default 5000)
`;

async function main(argv: string[]): Promise<number> {
  let socket: string | undefined;
  let timeoutMs = 5000;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--socket') socket = argv[++i];
    else if (a.startsWith('--socket=')) socket = a.slice(9);
    else if (a === '--timeout') timeoutMs = Number(argv[++i]);
    else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      return EXIT.OK;
    } else rest.push(a);
  }
  const [command, ...args] = rest;
  if (command === undefined || !['ping', 'status', 'echo'].includes(command) || (command === 'echo' && args.length === 0) || !(timeoutMs > 0)) {
    process.stderr.write(`fuguectl: ${command === undefined ? 'missing command' : `bad command line: ${rest.join(' ')}`}\n${USAGE}`);
    return EXIT.USAGE;
  }
  const path = expandPath(socket ?? process.env.FUGUE_SOCKET_PATH ?? defaultSocketPath(process.env), process.env, process.cwd(), '--socket');
  const client = await FugueClient.connect(path, { clientName: 'fuguectl', timeoutMs });
  try {
    const t0 = performance.now();
    const reply = command === 'ping' ? await client.ping() : command === 'status' ? await client.status() : await client.echo(args.join(' '));
    if (reply.type === 'error') {
      process.stderr.write(`fuguectl: server replied ${String(reply.code)}: ${String(reply.message)}\n`);
      return 76;
    }
    if (command === 'ping') process.stdout.write(`pong from ${path} in ${(performance.now() - t0).toFixed(2)} ms\n`);
    else if (command === 'status') process.stdout.write(`${JSON.stringify({ ...reply, id: undefined }, null, 2)}\n`);
    else process.stdout.write(`${String(reply.data)}\n`);
    return EXIT.OK;
  } finally {
    await client.detach().catch(() => client.destroy());
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`fuguectl: ${isFugueError(err) ? err.message : String(err)}\n`);
    process.exit(isFugueError(err) ? err.exitCode : EXIT.SOFTWARE);
  },
);
