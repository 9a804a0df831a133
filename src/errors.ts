/*
 * errors.ts — errors as PostgreSQL reports them: SQLSTATE, severity, message, detail, hint.
 *
 * Every error a user can see is a PgError with PostgreSQL's text where PostgreSQL has one,
 * so that `err.code === '42P01'` and `err.message === 'relation "x" does not exist'` hold
 * for walship as they do for a real server. The codes used most are named in SqlState.
 */

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'LOG';

export const SqlState = {
  SyntaxError: '42601',
  FeatureNotSupported: '0A000',
  UndefinedTable: '42P01',
  DuplicateTable: '42P07',
  UndefinedColumn: '42703',
  DuplicateColumn: '42701',
  UniqueViolation: '23505',
  NotNullViolation: '23502',
  InvalidTextRepresentation: '22P02',
  NumericValueOutOfRange: '22003',
  DatatypeMismatch: '42804',
  UndefinedFunction: '42883',
  ActiveSqlTransaction: '25001',
  NoActiveSqlTransaction: '25P01',
  InFailedSqlTransaction: '25P02',
  SerializationFailure: '40001',
  DatabaseDropped: '57P04',
  ReadOnlySqlTransaction: '25006',
  DivisionByZero: '22012',
  AmbiguousColumn: '42702',
  InvalidSavepointSpecification: '3B001',
  DeadlockDetected: '40P01',
  InvalidCatalogName: '3D000',
  CannotConnectNow: '57P03',
  TooManyConnections: '53300',
  ConnectionFailure: '08006',
  AdminShutdown: '57P01',
  ConnectionDoesNotExist: '08003',
  CardinalityViolation: '21000',
  InvalidColumnReference: '42P10',
  LockNotAvailable: '55P03',
  ObjectNotInPrerequisiteState: '55000',
  ObjectInUse: '55006',
  DuplicateDatabase: '42P04',
  DuplicateObject: '42710',
  ReservedName: '42939',
  DependentObjectsStillExist: '2BP01',
  SequenceGeneratorLimitExceeded: '2200H',
  InvalidCursorName: '34000',
  DuplicateCursor: '42P03',
  ProtocolViolation: '08P01',
  UndefinedObject: '42704',
  InvalidParameterValue: '22023',
  CantChangeRuntimeParam: '55P02',
  ConfigFileError: 'F0000',
  DataCorrupted: 'XX001',
  InternalError: 'XX000',
  InvalidAuthorizationSpecification: '28000',
  InvalidPassword: '28P01',
  InsufficientPrivilege: '42501',
  UndefinedFile: '58P01',
  UnableToConnect: '08001',
  ConfigurationLimitExceeded: '53400',
  QueryCanceled: '57014',
  Warning: '01000',
} as const;

export interface PgErrorFields {
  readonly code: string;
  readonly severity?: Severity;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
  /** 1-based character position in the statement text, for syntax errors. */
  readonly position?: number;
}

export class PgError extends Error {
  override readonly name = 'PgError';
  readonly code: string;
  readonly severity: Severity;
  readonly detail: string | undefined;
  readonly hint: string | undefined;
  readonly position: number | undefined;

  constructor(fields: PgErrorFields) {
    super(fields.message);
    this.code = fields.code;
    this.severity = fields.severity ?? 'ERROR';
    this.detail = fields.detail;
    this.hint = fields.hint;
    this.position = fields.position;
  }

  /** Plain data, for crossing threads and processes. */
  toFields(): PgErrorFields {
    return {
      code: this.code, severity: this.severity, message: this.message,
      ...(this.detail === undefined ? {} : { detail: this.detail }),
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.position === undefined ? {} : { position: this.position }),
    };
  }
}
