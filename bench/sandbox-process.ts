/**
 * One platform's sandbox in a process of its own, for bench/fetch.ts: the fetching process's
 * memory and CPU are then its own, and the two processes use the machine's two cores.
 *
 *   node --import tsx bench/sandbox-process.ts '{"platform":"orion","seed":"bench","ownerId":"bench-owner","accountId":"BENCH-1","holdings":50000,"transactions":200000,"rateLimitScale":0.0001}'
 *
 * Starts the sandbox on port 0 with autoApprove, adds the account and writes one JSON line to
 * stdout: `{"url": "http://127.0.0.1:<port>"}`. Closes the sandbox and exits when stdin ends
 * (the parent went away or closed it) or on SIGTERM.
 */
import { z } from 'zod';
import { PlatformSchema } from '../src/domain/platforms/records.ts';
import { platformModule } from '../src/adapters/platforms/registry.ts';

const ArgumentsSchema = z.object({
  platform: PlatformSchema,
  seed: z.string().min(1),
  ownerId: z.string().min(1),
  accountId: z.string().min(1),
  holdings: z.number().int().nonnegative(),
  transactions: z.number().int().nonnegative(),
  rateLimitScale: z.number().positive(),
});

const args = ArgumentsSchema.parse(JSON.parse(process.argv[2] ?? '{}'));
const sandbox = await platformModule(args.platform).startSandbox({ seed: args.seed, autoApprove: true, rateLimitScale: args.rateLimitScale });
sandbox.world.addAccount({ ownerId: args.ownerId, id: args.accountId, holdings: args.holdings, transactions: args.transactions });

let closing = false;
async function close(): Promise<void> {
  if (closing) return;
  closing = true;
  await sandbox.close();
  process.exit(0);
}
process.on('SIGTERM', () => void close());
process.stdin.on('end', () => void close());
process.stdin.resume();
process.stdout.write(`${JSON.stringify({ url: sandbox.url })}\n`);
