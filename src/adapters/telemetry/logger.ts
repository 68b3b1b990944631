import { pino, type DestinationStream, type Logger } from 'pino';

/** Keys whose values are secrets wherever they appear in a log record, at any depth. */
const SECRET_KEY = /password|passwd|secret|token|authorization|cookie|connection[-_]?string|database[-_]?url|api[-_]?key|subscription[-_]?key|credential/i;
const CENSOR = '[redacted]';

function redactSecrets(value: unknown, depth: number): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1));
  if (value instanceof Error) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) ? CENSOR : redactSecrets(item, depth + 1);
  }
  return out;
}

/**
 * Structured JSON logs. Anything under a key that names a secret is replaced, at any depth
 * (pino's path-based redaction reaches only the depths it is told of).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, formatters: { log: (record) => redactSecrets(record, 0) as Record<string, unknown> } }, destination);
}
