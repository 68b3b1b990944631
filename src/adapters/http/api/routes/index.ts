import type { ApiRoutes } from '../context.ts';
import { connectionRoutes } from './connections.ts';
import { portfolioRoutes } from './portfolios.ts';
import { syncOperationRoutes } from './sync-operations.ts';

/** Every route group of /api/v1, in the order the OpenAPI document lists them. */
export const apiRouteGroups: readonly ApiRoutes[] = [portfolioRoutes, connectionRoutes, syncOperationRoutes];
