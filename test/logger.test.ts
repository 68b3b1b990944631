import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/adapters/telemetry/logger.ts';

function capture(): { lines: string[]; stream: { write(line: string): void } } {
  const lines: string[] = [];
  return { lines, stream: { write: (line: string) => void lines.push(line) } };
}

describe('logger', () => {
  it('redacts secrets at any depth and keeps the rest', () => {
    const { lines, stream } = capture();
    const logger = createLogger('info', stream);
    logger.info(
      {
        connection: { id: 'c-1', credentials: { accessToken: 'tok-AAA' } },
        request: { headers: { Authorization: 'Bearer tok-BBB', accept: 'application/json' } },
        deep: { a: { b: { refresh_token: 'tok-CCC', apiSecret: 'sec-DDD' } } },
        attempts: [{ client_secret: 'sec-EEE', status: 429 }],
      },
      'fetched',
    );
    const line = lines.join('');
    for (const secret of ['tok-AAA', 'tok-BBB', 'tok-CCC', 'sec-DDD', 'sec-EEE']) expect(line).not.toContain(secret);
    const record = JSON.parse(line);
    expect(record.connection.id).toBe('c-1');
    expect(record.request.headers.accept).toBe('application/json');
    expect(record.attempts[0].status).toBe(429);
    expect(record.deep.a.b.refresh_token).toBe('[redacted]');
  });
});
