import type { Decider, DomainEvent } from '../domain/decider.ts';
import type { EventMetadata } from '../domain/events/metadata.ts';
import { WrongExpectedVersionError, type EventStore, type LogCursor } from '../ports/event-store.ts';

export interface CommandResult<TEvent> {
  readonly events: readonly TEvent[];
  /** The stream's version after the command (unchanged when it caused no events). */
  readonly version: number;
  /** Where the appended events sit in the log, for read-your-writes; null when nothing was appended. */
  readonly lastCursor: LogCursor | null;
}

export interface HandleOptions {
  readonly metadata?: EventMetadata;
  /** How often a command is decided again after another writer changed the stream meanwhile. */
  readonly maxRetries?: number;
}

/**
 * Loads a stream, folds it into state, decides, and appends with the version it decided on. When
 * another writer got there first, the command is decided again on the new state: a command that
 * is still valid then goes through, one that is not fails with the rule it breaks.
 */
export async function handleCommand<TState, TCommand, TEvent extends DomainEvent>(
  store: EventStore,
  decider: Decider<TState, TCommand, TEvent>,
  streamId: string,
  command: TCommand,
  options: HandleOptions = {},
): Promise<CommandResult<TEvent>> {
  const maxRetries = options.maxRetries ?? 3;
  for (let attempt = 0; ; attempt++) {
    const history = await store.readStream(streamId);
    // The store validated every event against its schema on read: the cast only names the union.
    const state = history.reduce((current, event) => decider.evolve(current, { type: event.type, data: event.data } as TEvent), decider.initialState());
    const version = history.at(-1)?.streamVersion ?? 0;
    const events = decider.decide(command, state);
    if (events.length === 0) return { events, version, lastCursor: null };
    try {
      const result = await store.append(
        streamId,
        events.map((event) => ({ type: event.type, data: event.data, metadata: options.metadata })),
        { expectedVersion: version === 0 ? 'no_stream' : version },
      );
      return { events, version: result.nextExpectedVersion, lastCursor: result.lastCursor };
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError) || attempt >= maxRetries) throw error;
    }
  }
}
