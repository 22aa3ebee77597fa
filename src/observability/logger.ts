import { type DestinationStream, type Logger, pino, stdTimeFunctions } from 'pino'
import pretty from 'pino-pretty'
import type { LogLevel } from '../config/config.js'

export interface LoggerOptions {
  /** `pretty` for people (a terminal); JSON lines otherwise. */
  readonly pretty?: boolean
  /** Where lines go; stdout when unset. */
  readonly destination?: DestinationStream
}

const CENSOR = '[redacted]'

/**
 * `api_key` one level down (`{ key: { api_key } }`), censored. pino's redaction could say it as
 * the path `*.api_key`, but a wildcard there makes it clone and walk every top-level value of
 * every line (about 4 KiB of garbage per request line, measured in bench/); this looks at each
 * value once and copies only what it censors.
 */
function censorNestedKeys(object: Record<string, unknown>): Record<string, unknown> {
  let censored: Record<string, unknown> | undefined
  for (const key in object) {
    const value = object[key]
    if (typeof value === 'object' && value !== null && Object.hasOwn(value, 'api_key')) {
      censored ??= { ...object }
      censored[key] = { ...value, api_key: CENSOR }
    }
  }
  return censored ?? object
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
    formatters: { level: (label: string) => ({ level: label }), log: censorNestedKeys },
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'api_key'],
      censor: CENSOR,
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
