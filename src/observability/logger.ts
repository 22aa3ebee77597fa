import { type DestinationStream, type Logger, pino, stdTimeFunctions } from 'pino'
import pretty from 'pino-pretty'
import type { LogLevel } from '../config/config.js'

export interface LoggerOptions {
  /** `pretty` for people (a terminal); JSON lines otherwise. */
  readonly pretty?: boolean
  /** Where lines go; stdout when unset. */
  readonly destination?: DestinationStream
}

/**
 * The process logger (pino): JSON lines with ISO times and level names (`"level":"info"`), or
 * the same lines made readable for a terminal. API keys never reach it: the Authorization header
 * is redacted wherever a request is logged. Lines go to stdout synchronously: pino's default
 * hands each one to a libuv thread, a thread wake-up and a completion per request line (measured
 * in bench/), and a kill loses what it still holds.
 */
export function createLogger(level: LogLevel, options: LoggerOptions = {}): Logger {
  const settings = {
    level,
    base: { service: 'berth' },
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', '*.api_key', 'api_key'],
      censor: '[redacted]',
    },
  }
  const destination =
    options.pretty === true
      ? pretty({
          ...(options.destination === undefined ? {} : { destination: options.destination }),
          colorize: options.destination === undefined && process.stdout.isTTY === true,
          translateTime: 'SYS:HH:MM:ss.l',
          ignore: 'pid,hostname,service',
          sync: true,
        })
      : (options.destination ?? pino.destination({ dest: 1, sync: true }))
  return pino(settings, destination)
}
