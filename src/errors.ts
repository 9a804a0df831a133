/*
 * errors.ts — errors as PostgreSQL reports them: SQLSTATE, severity, message, detail, hint.
 *
 * Every error a user can see is a PgError with PostgreSQL's text where PostgreSQL has one,
 * so that `err.code === '42P01'` and `err.message === 'relation "x" does not exist'` hold
 * for walship as they do for a real server. Codes used here are named in SqlState.
 */

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'LOG';

export const SqlState = {
  SyntaxError: '42601',
  UndefinedObject: '42704',
  InvalidParameterValue: '22023',
  CantChangeRuntimeParam: '55P02',
  ConfigFileError: 'F0000',
  DataCorrupted: 'XX001',
  InternalError: 'XX000',
} as const;

export interface PgErrorFields {
  readonly code: string;
  readonly severity?: Severity;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

export class PgError extends Error {
  override readonly name = 'PgError';
  readonly code: string;
  readonly severity: Severity;
  readonly detail: string | undefined;
  readonly hint: string | undefined;

  constructor(fields: PgErrorFields) {
    super(fields.message);
    this.code = fields.code;
    this.severity = fields.severity ?? 'ERROR';
    this.detail = fields.detail;
    this.hint = fields.hint;
  }

  /** Plain data, for crossing threads and processes. */
  toFields(): PgErrorFields {
    return {
      code: this.code, severity: this.severity, message: this.message,
      ...(this.detail === undefined ? {} : { detail: this.detail }),
      ...(this.hint === undefined ? {} : { hint: this.hint }),
    };
  }
}
