import type { z } from 'zod';

/** Bad input: names the field and what was wrong with it. */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(readonly issues: readonly { path: string; message: string }[]) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join('; '));
  }
}

/** Parses with a schema, turning zod's issues into a ValidationError rooted at `field`. */
export function parseField<T extends z.ZodType>(schema: T, value: unknown, field: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ValidationError(
    result.error.issues.map((issue) => ({ path: [field, ...issue.path.map(String)].join('.'), message: issue.message })),
  );
}
