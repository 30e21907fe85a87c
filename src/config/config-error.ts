/** Why a configuration could not be accepted. The CLI maps every ConfigError to exit code 2. */
export type ConfigErrorCode =
  | 'UNKNOWN_FLAG'
  | 'MISSING_VALUE'
  | 'UNEXPECTED_ARGUMENT'
  | 'INVALID_PORT'
  | 'INVALID_HOST'
  | 'INVALID_DATA_DIR'
  | 'INVALID_FSYNC_POLICY'
  | 'INVALID_FSYNC_INTERVAL'
  | 'INVALID_TLS'
  | 'INVALID_LIMIT'
  | 'INVALID_ADMIN_TOKEN'
  | 'INVALID_LOG_LEVEL'
  | 'INVALID_CONFIG_FILE';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code: ConfigErrorCode;

  constructor(code: ConfigErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
