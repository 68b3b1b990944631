import { z } from 'zod';

/** Who and what caused an event; travels with every stored event. */
export const EventMetadataSchema = z
  .object({
    correlationId: z.string().min(1).max(200).optional(),
    causationId: z.string().min(1).max(200).optional(),
    actor: z.string().min(1).max(200).optional(),
    source: z.string().min(1).max(200).optional(),
  })
  .strict();

export type EventMetadata = z.infer<typeof EventMetadataSchema>;
