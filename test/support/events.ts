import { z } from 'zod';
import { defineEvent, EventCatalogue } from '../../src/domain/events/catalogue.ts';

/** Event types of the tests' own: the store is generic over the catalogue it is given. */
export const CounterIncremented = defineEvent({
  type: 'CounterIncremented',
  version: 2,
  schema: z.object({ by: z.number().int(), note: z.string() }),
  upcasters: { 1: (data) => ({ ...(data as object), note: 'upcast from v1' }) },
});

export const AccountOpened = defineEvent({
  type: 'AccountOpened',
  version: 1,
  schema: z.object({ accountId: z.string().min(1), currency: z.string().length(3), balance: z.string().regex(/^-?\d+(\.\d+)?$/) }),
});

export const testCatalogue = new EventCatalogue([CounterIncremented, AccountOpened]);

export const inc = (by = 1, note = 'n') => ({ type: 'CounterIncremented', data: { by, note } });
