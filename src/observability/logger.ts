import { type DestinationStream, type Logger, pino } from 'pino'
import type { LogLevel } from '../config/config.js'

/**
 * The process logger: JSON lines (pino). API keys never reach it: the Authorization header is
 * redacted wherever a request is logged.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'berth' },
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', '*.api_key', 'api_key'],
      censor: '[redacted]',
    },
  }
  return destination === undefined ? pino(options) : pino(options, destination)
}
