// A real AF_UNIX SOCK_DGRAM receiver standing in for systemd's notification
// socket (test/fixtures/notify_receiver.py, run with python3). Point a process
// at it with NOTIFY_SOCKET=rx.address and wait for what it should say:
//
//   const rx = await startNotifyReceiver(t);              // or { abstract: true }
//   const child = spawn(cli, args, { env: { ...env, NOTIFY_SOCKET: rx.address } });
//   await rx.waitFor((m) => m.READY === '1', 'READY=1');
//   child.kill('SIGTERM');
//   await rx.waitFor((m) => m.STOPPING === '1', 'STOPPING=1');
//
// Each datagram keeps its raw text, its KEY=value fields, the sender's pid
// (from SCM_CREDENTIALS, as systemd sees it) and CLOCK_MONOTONIC at receipt.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { waitFor } from './wait-for.js';

// Compiled to dist/test/helpers/: three levels up is the repository root.
const RECEIVER = fileURLToPath(new URL('../../../test/fixtures/notify_receiver.py', import.meta.url));

/** KEY=value fields of one notification, e.g. { READY: '1', STATUS: 'serving' }. */
export type NotifyFields = Readonly<Record<string, string>>;

export interface NotifyDatagram {
  /** The datagram as text (no trailing newline unless the sender put one). */
  raw: string;
  fields: NotifyFields;
  /** The sender's pid from SCM_CREDENTIALS (what systemd's NotifyAccess=main compares with MAINPID). */
  pid: number | undefined;
  uid: number | undefined;
  /** CLOCK_MONOTONIC in µs when the receiver read it. */
  monotonicUsec: bigint;
  /** The datagram was longer than the 4096 bytes systemd reads. */
  truncated: boolean;
}

export interface WaitForOptions {
  timeoutMs?: number;
  /** Only datagrams received after this one count. */
  after?: NotifyDatagram;
}

export interface NotifyReceiver {
  /** The value for NOTIFY_SOCKET: an absolute path, or @name for an abstract socket. */
  readonly address: string;
  /** Every datagram so far, in arrival order. */
  readonly datagrams: readonly NotifyDatagram[];
  /** The fields of every datagram so far. */
  messages(): NotifyFields[];
  /** The raw text of every datagram so far. */
  raw(): string[];
  /** The first datagram (after `options.after`) whose fields satisfy `pred`; rejects at the deadline (default 5 s), naming `what`. */
  waitFor(pred: (fields: NotifyFields, datagram: NotifyDatagram) => boolean, what: string, options?: WaitForOptions): Promise<NotifyDatagram>;
  /** Stop the receiver (a path socket is removed). Idempotent. */
  close(): Promise<void>;
}

export interface NotifyReceiverOptions {
  /** Bind an abstract-namespace name (@fugue-notify-...) instead of a socket file. */
  abstract?: boolean;
  /** Bind exactly this NOTIFY_SOCKET value (an absolute path or @name), e.g. to come back at an address a sender already uses. */
  address?: string;
  /** Directory for the socket file; default: a fresh /tmp/fgn-XXXXXX, removed on close. */
  dir?: string;
  /** How long to wait for the receiver to bind. Default 10 s (python3 start-up on a busy machine). */
  startTimeoutMs?: number;
}

/** Parse a notification the way systemd does: newline-separated KEY=value, empty lines skipped. */
export function parseNotifyFields(raw: string): NotifyFields {
  const fields: Record<string, string> = {};
  for (const line of raw.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return fields;
}

interface ReceiverLine {
  event: 'bound' | 'datagram';
  address?: string;
  data?: string;
  pid?: number | null;
  uid?: number | null;
  monotonic_usec?: number;
  truncated?: boolean;
}

/** Start a receiver; with `t`, it is closed in the test's teardown. */
export async function startNotifyReceiver(t?: ExecutionContext, options: NotifyReceiverOptions = {}): Promise<NotifyReceiver> {
  let ownDir: string | undefined;
  let address: string;
  if (options.address !== undefined) {
    address = options.address;
  } else if (options.abstract) {
    address = `@fugue-notify-${process.pid}-${randomBytes(6).toString('hex')}`;
  } else {
    const dir = options.dir ?? (ownDir = mkdtempSync('/tmp/fgn-'));
    address = join(dir, 'notify.sock');
  }
  const child: ChildProcess = spawn('python3', [RECEIVER, address], { stdio: ['pipe', 'pipe', 'pipe'] });
  const datagrams: NotifyDatagram[] = [];
  let bound = false;
  let exited = false;
  let stderr = '';
  const exitPromise = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));
  child.once('error', (err) => {
    stderr += `spawn python3 failed: ${err.message}\n`;
    exited = true;
  });
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    const line = JSON.parse(text) as ReceiverLine;
    if (line.event === 'bound') bound = true;
    else if (line.event === 'datagram') {
      const raw = line.data ?? '';
      datagrams.push({
        raw,
        fields: parseNotifyFields(raw),
        pid: line.pid ?? undefined,
        uid: line.uid ?? undefined,
        monotonicUsec: BigInt(line.monotonic_usec ?? 0),
        truncated: line.truncated === true,
      });
    }
  });

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Closing stdin asks it to exit; a kill is the fallback.
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      if (!exited) await exitPromise;
      clearTimeout(timer);
      if (ownDir !== undefined) rmSync(ownDir, { recursive: true, force: true });
    })());
  t?.teardown(close);

  try {
    await waitFor(() => bound || (exited ? Promise.reject(new Error(`notify receiver exited before binding ${address}: ${stderr.trim()}`)) : false), {
      what: `the notify receiver to bind ${address}`,
      timeoutMs: options.startTimeoutMs ?? 10_000,
    });
  } catch (err) {
    await close();
    throw err;
  }

  return {
    address,
    datagrams,
    messages: () => datagrams.map((d) => d.fields),
    raw: () => datagrams.map((d) => d.raw),
    async waitFor(pred, what, waitOptions = {}) {
      const start = waitOptions.after === undefined ? 0 : datagrams.indexOf(waitOptions.after) + 1;
      try {
        return await waitFor(() => datagrams.slice(start).find((d) => pred(d.fields, d)), { what: `${what} on ${address}`, timeoutMs: waitOptions.timeoutMs ?? 5000 });
      } catch (err) {
        throw new Error(`${(err as Error).message}; received so far: ${JSON.stringify(datagrams.map((d) => d.raw))}`);
      }
    },
    close,
  };
}
