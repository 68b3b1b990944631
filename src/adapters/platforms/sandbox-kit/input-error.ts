/** A mutation the world refuses: unknown account or record, or a value it cannot take. */
export class SandboxInputError extends Error {
  override readonly name = 'SandboxInputError';
  constructor(
    readonly field: string,
    message: string,
    readonly status: 400 | 404 | 409 = 400,
  ) {
    super(message);
  }
}
