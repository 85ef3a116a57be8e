#!/usr/bin/env node
// fuguectl: talk to a running fugue-server. Commands, options and exit codes
// are in ctl.ts (and docs/operations.md, "fuguectl").

import { enableCompileCache } from './compile-cache.js';

// Before the rest of fuguectl loads: its compiled code is reused from the last call (Node 22.1+).
enableCompileCache(process.env);
// No top-level await: the bundled entry is CommonJS (docs/performance.md, "fuguectl per call").
void import('./ctl.js')
  .then(({ runCtl }) =>
    runCtl(process.argv.slice(2), {
      env: process.env,
      cwd: process.cwd(),
      stdout: (text) => process.stdout.write(text),
      stderr: (text) => process.stderr.write(text),
    }),
  )
  // Exit once what was written has been flushed (a pipe may still hold it).
  .then((code) => process.stdout.write('', () => process.stderr.write('', () => process.exit(code))));
