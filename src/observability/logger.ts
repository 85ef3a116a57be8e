// Structured JSON logs on stdout (pino). Log lines are a lowercase event phrase
// plus fields; errors go under `err`.

import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/schema.js';

export type { Logger };

export interface LoggerOptions {
  level: LogLevel;
  /** Where to write (see log-sink.ts for stdout). */
  destination: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { pid: process.pid },
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}

// pino's stdTimeFunctions.isoTime, with the text made once per millisecond:
// toISOString() was about 3 % of the server's time at thousands of
// connections a second, where many lines share a millisecond.
let lastMs = 0;
let lastText = '';
function isoTime(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastText = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastText;
}
