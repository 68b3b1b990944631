import type { WireRecord } from '../domain/ingestion/source-records.ts';
import type { RecordedEvent } from '../ports/event-store.ts';

/** What a batch did to one source record: its whole new content, or changes to the stored one, or its removal. */
export interface FoldedRecord {
  readonly connectionId: string;
  readonly recordId: string;
  whole: WireRecord | null;
  /** Merged changes to the stored record when the batch never saw it whole (null: the field is gone). */
  changes: Record<string, unknown>;
  removed: boolean;
  revision: number;
  at: Date;
}

/** Folds a batch's SourceRecord* events per record, in log order, so that each record is written once. */
export function foldSourceEvents(events: readonly RecordedEvent[]): Map<string, FoldedRecord> {
  const folded = new Map<string, FoldedRecord>();
  for (const event of events) {
    const data = event.data as { connectionId: string; recordId: string; revision: number; record?: WireRecord; changes?: Record<string, unknown> };
    const key = `${data.connectionId}\u0000${data.recordId}`;
    let entry = folded.get(key);
    if (!entry) folded.set(key, (entry = { connectionId: data.connectionId, recordId: data.recordId, whole: null, changes: {}, removed: false, revision: data.revision, at: event.recordedAt }));
    entry.revision = data.revision;
    entry.at = event.recordedAt;
    if (event.type === 'SourceRecordObserved') {
      entry.whole = data.record!;
      entry.changes = {};
      entry.removed = false;
    } else if (event.type === 'SourceRecordChanged') {
      if (entry.whole) {
        const next: Record<string, unknown> = { ...entry.whole };
        for (const [field, value] of Object.entries(data.changes!)) {
          if (value === null) delete next[field];
          else next[field] = value;
        }
        entry.whole = next;
      } else Object.assign(entry.changes, data.changes);
    } else {
      entry.whole = null;
      entry.changes = {};
      entry.removed = true;
    }
  }
  return folded;
}
