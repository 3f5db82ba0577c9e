/**
 * Errors that dropmon shows to an operator.
 *
 * `ParseError` is thrown by every parser of kernel-provided input (format files,
 * ring-buffer pages, /proc/kallsyms): it names what was malformed and where, so a
 * fuzzer or a fixture test can assert on it and a user sees more than a stack trace.
 * `DropmonError` is an operational failure with the fix spelled out (`hint`).
 */
export class ParseError extends Error {
  override readonly name = 'ParseError';
  constructor(
    /** What was being parsed, e.g. "event format", "ring-buffer page". */
    readonly what: string,
    /** Where: a byte offset or a 1-based line number, as the message says. */
    readonly where: string,
    detail: string,
  ) {
    super(`${what}: ${detail} (at ${where})`);
  }
}

export class DropmonError extends Error {
  override readonly name = 'DropmonError';
  constructor(
    message: string,
    /** What the operator can do about it, one line. */
    readonly hint?: string,
    /** Process exit code when this error ends the program. */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Bad command-line usage: exit code 2, like most Unix tools. */
export class UsageError extends DropmonError {
  constructor(message: string, hint = "see 'dropmon --help'") {
    super(message, hint, 2);
  }
}

/** The errno code of a Node system error, or undefined. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}
