import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { DecimalStringSchema } from '../../../domain/money/decimal.ts';
import { formatCursor, type LogCursor } from '../../../ports/event-store.ts';
import { ApiProblem, ProblemSchema } from './problem.ts';

/** Building blocks the API's request and response schemas share. */

export const IdSchema = z.string().trim().min(1).max(200);
export const IdParamsSchema = z.object({ id: IdSchema });

export const DecimalString = DecimalStringSchema.meta({ description: 'A decimal number as a string; never a JSON number', example: '1234.56' });

/** Times leave the API as ISO 8601 UTC. */
export const InstantSchema = z.iso.datetime().meta({ example: '2026-11-22T06:00:00.000Z' });
export const instant = (value: Date | string | null | undefined): string | null => (value == null ? null : new Date(value).toISOString());

/** Where a command's events sit in the log; send it back in Ledger-Min-Position to read your own write. */
export const PositionSchema = z.string().meta({ description: 'A log position (transaction id and global position)', example: '1234.5678' });
export const POSITION_HEADER = 'ledger-position';

/** Answers a command's result: its log position in the body and in the Ledger-Position header. */
export function withPosition(reply: FastifyReply, cursor: LogCursor | null): string | null {
  const position = cursor ? formatCursor(cursor) : null;
  if (position) reply.header(POSITION_HEADER, position);
  return position;
}

/** Cursor paging: `limit` items after the opaque `cursor` of the previous page. */
export const PageQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z.string().min(1).max(500).optional().meta({ description: 'The nextCursor of the previous page' }),
});

export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({
    items: z.array(item),
    nextCursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page' }),
  });

/** Opaque page cursors: the sort key of the last item, base64url JSON, checked on the way back in. */
export function encodePageCursor(key: readonly unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodePageCursor<T extends z.ZodType>(schema: T, cursor: string | undefined): z.output<T> | null {
  if (cursor === undefined) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    throw new ApiProblem('validation', 'query.cursor: is not a cursor this list gave out', { errors: [{ field: 'query.cursor', message: 'is not a cursor this list gave out' }] });
  }
  return result.data;
}

/** The problem answers every route may give, for the OpenAPI document. */
export const commonErrors = {
  400: ProblemSchema,
  401: ProblemSchema,
  403: ProblemSchema,
  404: ProblemSchema,
  429: ProblemSchema,
} as const;
