import { z } from 'zod';

/** Stream ids read `<category>-<id>`, e.g. `portfolio-01J…`; the category groups streams of one kind. */
export const StreamIdSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/, 'may hold only letters, digits and _ . : @ - and must start with a letter or digit');

export function streamCategory(streamId: string): string {
  const dash = streamId.indexOf('-');
  return dash > 0 ? streamId.slice(0, dash) : streamId;
}
