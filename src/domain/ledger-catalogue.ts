import { conflictEventDefinitions } from './conflicts/events.ts';
import { connectionEventDefinitions } from './connections/events.ts';
import { EventCatalogue, type EventDefinition } from './events/catalogue.ts';
import { fxEventDefinitions } from './fx/events.ts';
import { ingestionEventDefinitions } from './ingestion/events.ts';
import { portfolioEventDefinitions } from './portfolio/events.ts';
import { pushEventDefinitions } from './push/events.ts';
import { syncEventDefinitions } from './sync/events.ts';

/** Every event type the ledger stores. */
export const ledgerEventDefinitions: readonly EventDefinition[] = [
  ...portfolioEventDefinitions,
  ...connectionEventDefinitions,
  ...syncEventDefinitions,
  ...ingestionEventDefinitions,
  ...conflictEventDefinitions,
  ...fxEventDefinitions,
  ...pushEventDefinitions,
];

export const ledgerCatalogue = new EventCatalogue(ledgerEventDefinitions);
