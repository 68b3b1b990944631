import { z } from 'zod';

/** The data type of an event definition, as its schema parses it. */
export type EventData<T extends { readonly schema: z.ZodType }> = z.infer<T['schema']>;

/** Turns the data of schema version `from` into the data of version `from + 1`. */
export type Upcaster = (data: unknown) => unknown;

export interface EventDefinition<TType extends string = string, TSchema extends z.ZodType = z.ZodType> {
  readonly type: TType;
  /** The current schema version; stored events of older versions are upcast on read. */
  readonly version: number;
  readonly schema: TSchema;
  /** Keyed by the version they upgrade from: upcasters[1] turns v1 data into v2 data. */
  readonly upcasters?: Readonly<Record<number, Upcaster>>;
}

/** Event type names: plain identifiers (they are written unescaped in the store's COPY path). */
const EVENT_TYPE_NAME = /^[A-Za-z][A-Za-z0-9_.]{0,99}$/;

export function defineEvent<TType extends string, TSchema extends z.ZodType>(
  definition: EventDefinition<TType, TSchema>,
): EventDefinition<TType, TSchema> {
  if (!EVENT_TYPE_NAME.test(definition.type)) throw new Error(`event type name "${definition.type}" must match ${EVENT_TYPE_NAME}`);
  for (let v = 1; v < definition.version; v++) {
    if (!definition.upcasters?.[v]) {
      throw new Error(`event type ${definition.type} is at version ${definition.version} but has no upcaster from version ${v}`);
    }
  }
  return definition;
}

/** Where an event was found, for error messages; a function so that it is built only on error. */
export type Context = string | (() => string);

/** Raised when an event's type is unknown or its data does not match the type's schema. */
export class InvalidEventError extends Error {
  override readonly name = 'InvalidEventError';
  constructor(
    readonly eventType: string,
    readonly issues: readonly { path: string; message: string }[],
    context?: Context,
  ) {
    context = typeof context === 'function' ? context() : context;
    super(
      `invalid ${eventType} event${context ? ` (${context})` : ''}: ` +
        issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '),
    );
  }
}

export interface ValidatedEvent {
  readonly type: string;
  readonly schemaVersion: number;
  readonly data: unknown;
}

/** The set of event types a store accepts, with their schemas and upcasters. */
export class EventCatalogue {
  private readonly definitions = new Map<string, EventDefinition>();

  constructor(definitions: readonly EventDefinition[]) {
    for (const definition of definitions) {
      if (this.definitions.has(definition.type)) throw new Error(`event type ${definition.type} is defined twice`);
      this.definitions.set(definition.type, definition);
    }
  }

  /** Validates new event data against the current schema of its type. */
  validate(type: string, data: unknown, context?: Context): ValidatedEvent {
    const definition = this.definitionOf(type, context);
    return { type, schemaVersion: definition.version, data: parse(definition, data, context) };
  }

  /** Upcasts stored data to the current version of its type, then validates it. */
  upcast(type: string, schemaVersion: number, data: unknown, context?: Context): ValidatedEvent {
    const definition = this.definitionOf(type, context);
    if (schemaVersion > definition.version) {
      throw new InvalidEventError(type, [{ path: 'schemaVersion', message: `version ${schemaVersion} is newer than the known version ${definition.version}` }], context);
    }
    let upcast = data;
    for (let v = schemaVersion; v < definition.version; v++) upcast = definition.upcasters![v]!(upcast);
    return { type, schemaVersion: definition.version, data: parse(definition, upcast, context) };
  }

  private definitionOf(type: string, context?: Context): EventDefinition {
    const definition = this.definitions.get(type);
    if (!definition) throw new InvalidEventError(type, [{ path: 'type', message: `unknown event type "${type}"` }], context);
    return definition;
  }
}

function parse(definition: EventDefinition, data: unknown, context?: Context): unknown {
  const result = definition.schema.safeParse(data);
  if (result.success) return result.data;
  throw new InvalidEventError(
    definition.type,
    result.error.issues.map((issue) => ({ path: ['data', ...issue.path.map(String)].join('.'), message: issue.message })),
    context,
  );
}
