#!/usr/bin/env node
// The CLI runs from its TypeScript source through tsx, as `npm start` does: there is no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
