import type { EventMetadata } from '../domain/events/metadata.ts';

/**
 * The expected state of a stream for an append: an exact version (the number of events the stream
 * holds), `no_stream` (it must not exist), `stream_exists` (it must hold at least one event) or
 * `any` (no check).
 */
export type ExpectedVersion = number | 'no_stream' | 'stream_exists' | 'any';

export interface NewEvent {
  /** A ULID; generated when absent. Re-appending an id already stored in the stream is a no-op. */
  readonly id?: string;
  readonly type: string;
  readonly data: unknown;
  readonly metadata?: EventMetadata;
}

/**
 * A place in the global log. Events are ordered by (transactionId, position): see readAll in the
 * PostgreSQL store for why the transaction id leads.
 */
export interface LogCursor {
  readonly transactionId: string;
  readonly position: number;
}

export interface RecordedEvent<TData = unknown> {
  readonly id: string;
  readonly streamId: string;
  /** 1 for the first event of a stream. */
  readonly streamVersion: number;
  readonly globalPosition: number;
  readonly transactionId: string;
  readonly type: string;
  /** The schema version of `data` as returned (after upcasting). */
  readonly schemaVersion: number;
  readonly data: TData;
  readonly metadata: EventMetadata;
  readonly recordedAt: Date;
  readonly hash: string;
}

export interface AppendResult {
  readonly streamId: string;
  /** The stream's version after the append: pass it as expectedVersion to append next. */
  readonly nextExpectedVersion: number;
  readonly events: readonly { id: string; streamVersion: number; globalPosition: number }[];
  /** The log position of the last event, for read-your-writes waits on projections. */
  readonly lastCursor: LogCursor;
  /** True when every event was already stored and nothing was written. */
  readonly alreadyStored: boolean;
}

export interface ReadStreamOptions {
  readonly direction?: 'forwards' | 'backwards';
  /** Inclusive; defaults to the first (forwards) or last (backwards) event. */
  readonly fromVersion?: number;
  readonly maxCount?: number;
}

export interface ReadAllOptions {
  /** Exclusive; null or absent reads from the start of the log. */
  readonly after?: LogCursor | null;
  readonly maxCount?: number;
}

export interface SubscribeOptions extends ReadAllOptions {
  readonly signal?: AbortSignal;
}

export interface EventStore {
  append(streamId: string, events: readonly NewEvent[], options?: { expectedVersion?: ExpectedVersion }): Promise<AppendResult>;
  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /**
   * The log from a cursor to the current end, page by page (maxCount events each), fetching the
   * next page while the caller works on the current one. Ends at the first short page.
   */
  readAllPages(options?: ReadAllOptions): AsyncIterable<RecordedEvent[]>;
  /** Catch-up then live; ends when the signal aborts. */
  subscribe(options?: SubscribeOptions): AsyncIterable<RecordedEvent>;
  /** The cursor of the last event a reader can see now, or null for an empty log. */
  head(): Promise<LogCursor | null>;
}

export class WrongExpectedVersionError extends Error {
  override readonly name = 'WrongExpectedVersionError';
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedVersion,
    readonly actual: number,
  ) {
    super(`wrong expected version for stream ${streamId}: expected ${expected}, actual ${actual === 0 ? 'no_stream (0)' : actual}`);
  }
}

/** An event id is already stored in another stream, or only part of a batch was stored before. */
export class EventIdConflictError extends Error {
  override readonly name = 'EventIdConflictError';
  constructor(
    readonly streamId: string,
    readonly eventIds: readonly string[],
    detail: string,
  ) {
    super(`event ids conflict on stream ${streamId}: ${detail}`);
  }
}

export function formatCursor(cursor: LogCursor): string {
  return `${cursor.transactionId}.${cursor.position}`;
}

export function parseCursor(text: string): LogCursor {
  const match = /^(\d{1,20})\.(\d{1,16})$/.exec(text);
  if (!match) throw new Error(`invalid log cursor "${text}": expected <transactionId>.<position>`);
  return { transactionId: match[1]!, position: Number(match[2]) };
}

/** Whether a projector at `checkpoint` has applied everything up to and including `target`, in log order. */
export function cursorReached(checkpoint: LogCursor | null, target: LogCursor): boolean {
  if (!checkpoint) return false;
  const a = BigInt(checkpoint.transactionId);
  const b = BigInt(target.transactionId);
  return a > b || (a === b && checkpoint.position >= target.position);
}
