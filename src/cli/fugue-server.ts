#!/usr/bin/env node
// The fugue-server daemon's entry point. It claims every managed signal
// before anything else is loaded: until a listener exists, SIGUSR1 would start
// Node's inspector (a debugger port any local user can attach to) and the
// others would kill the process. Signals that arrive while the daemon loads
// are held and handled once it runs (daemon.ts).

import { enableCompileCache } from './compile-cache.js';
import { MANAGED_SIGNALS } from './signals.js';

const held: NodeJS.Signals[] = [];
const hold = (signal: NodeJS.Signals): void => {
  held.push(signal);
};
for (const signal of MANAGED_SIGNALS) process.on(signal, hold);
// Before the rest of fugue loads: its compiled code is reused from the last start (Node 22.1+).
enableCompileCache(process.env);

// No top-level await: the bundled entry is CommonJS (docs/performance.md, "Start-up").
void import('./daemon.js').then(({ runDaemon }) =>
  runDaemon(
    {
      argv: process.argv.slice(2),
      env: process.env,
      exit: (code) => process.exit(code),
      stdout: (t) => process.stdout.write(t),
      stderr: (t) => process.stderr.write(t),
    },
    {
      held,
      // Called once the daemon's own listeners are in place: a signal never finds none.
      release: () => {
        for (const signal of MANAGED_SIGNALS) process.off(signal, hold);
      },
    },
  ),
);
