/** The kit the three platform sandboxes share: the world's truth, faults, limits, OAuth, control API, webhooks. */
export type {
  SandboxAccount,
  SandboxAttribution,
  SandboxBenchmarkComparison,
  SandboxHolding,
  SandboxPerformance,
  SandboxPush,
  SandboxRiskMetrics,
  SandboxSecurity,
  SandboxTaxLot,
  SandboxTransaction,
  SandboxTransactionStatus,
  SandboxTransactionType,
  WorldChange,
} from './types.ts';
export {
  DEFAULT_AS_OF,
  MAX_HOLDINGS_PER_ACCOUNT,
  MAX_TRANSACTIONS_PER_ACCOUNT,
  SandboxWorld,
  type AddAccountInput,
  type HoldingRange,
  type SandboxWorldOptions,
  type SecuritySelector,
  type TradeInput,
  type TransactionChanges,
  type TransactionFilter,
} from './world.ts';
export { SandboxInputError } from './input-error.ts';
export { SANDBOX_USD_PER_UNIT } from './money.ts';
export { KNOWN_SECURITIES, MAX_SECURITY_INDEX, securityAt, securityIndexOfTicker } from './securities.ts';
export {
  FaultInjector,
  FaultKindSchema,
  FaultSchema,
  PAGE_FAULT_KINDS,
  REQUEST_FAULT_KINDS,
  type EnqueueOptions,
  type Fault,
  type FaultDialect,
  type FaultInjectorOptions,
  type FaultKind,
  type PageFaultKind,
} from './faults.ts';
export { RateLimiter, type RateDecision, type RateLimiterOptions } from './rate-limiter.ts';
export { DEFAULT_LIFETIMES, TokenStore, type AccessVerdict, type IssuedTokens, type RefreshVerdict, type TokenInvalidator, type TokenLifetimes, type TokenOwner } from './tokens.ts';
export { OAuthServer, s256, type OAuthClient, type OAuthServerOptions } from './oauth-server.ts';
export { registerControlApi, type ControlApiDependencies } from './control-api.ts';
export {
  DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
  WEBHOOK_SIGNATURE_HEADER,
  WebhookSender,
  signWebhook,
  verifyWebhookSignature,
  type SignatureCheck,
  type WebhookDelivery,
  type WebhookEvent,
  type WebhookSenderOptions,
  type WebhookSubscription,
} from './webhooks.ts';
export { startSandbox, type PlatformSandboxOptions, type RunningSandbox, type SandboxContext, type SandboxPlugin, type StartSandboxOptions } from './start-sandbox.ts';
