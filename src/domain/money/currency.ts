import { z } from 'zod';

/** ISO 4217 codes as the runtime's ICU data knows them. */
const ISO_4217 = new Set(Intl.supportedValuesOf('currency'));

export function isIso4217(code: string): boolean {
  return ISO_4217.has(code);
}

export const CurrencySchema = z
  .string()
  .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as USD')
  .refine(isIso4217, 'is not an ISO 4217 currency code');
export type Currency = z.infer<typeof CurrencySchema>;
