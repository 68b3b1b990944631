import type { Decider, DomainEvent } from '../../src/domain/decider.ts';
import { DomainRuleViolation } from '../../src/domain/decider.ts';

/** Decides each command on the state the previous ones left, folding their events in. */
export function runCommands<S, C, E extends DomainEvent>(decider: Decider<S, C, E>, commands: readonly C[], from: S = decider.initialState()): { events: E[]; state: S } {
  let state = from;
  const events: E[] = [];
  for (const command of commands) {
    for (const event of decider.decide(command, state)) {
      events.push(event);
      state = decider.evolve(state, event);
    }
  }
  return { events, state };
}

/** The code of the DomainRuleViolation `run` throws, or 'no violation'. */
export function violationCode(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof DomainRuleViolation) return error.code;
    throw error;
  }
  return 'no violation';
}
