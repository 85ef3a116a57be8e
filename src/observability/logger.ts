// Structured JSON logs on stdout (pino). Log lines are a lowercase event phrase
// plus fields; errors go under `err`.

import { pino, stdTimeFunctions, type DestinationStream, type Logger } from 'pino';
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
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}
