/** An event as deciders see it: its type and its data, before the store gives it a place in the log. */
export interface DomainEvent<TType extends string = string, TData = unknown> {
  readonly type: TType;
  readonly data: TData;
}

/**
 * The pure core of a stream: decide(command, state) answers with the events that the command
 * causes (none when it changes nothing) or throws a DomainRuleViolation; evolve(state, event)
 * folds an event into the state. No I/O: commands/ loads, decides and appends.
 */
export interface Decider<TState, TCommand, TEvent extends DomainEvent> {
  initialState(): TState;
  decide(command: TCommand, state: TState): TEvent[];
  evolve(state: TState, event: TEvent): TState;
}

/** A command the rules refuse: `code` is stable for clients, the message says why. */
export class DomainRuleViolation extends Error {
  override readonly name = 'DomainRuleViolation';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
