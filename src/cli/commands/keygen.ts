/** `ensync-engine keygen`: print a fresh Ed25519 key pair for a client, as one JSON line. */
import { generateSigningKeyPair } from '../../engine/signing.js';
import { EXIT_OK, PROGRAM_NAME, usageError, type CliCommand, type CliContext } from '../command.js';

export const keygenCommand: CliCommand = {
  name: 'keygen',
  summary: 'print a new Ed25519 key pair for a client (JSON)',
  usage: keygenUsage,
  run: runKeygen,
};

function keygenUsage(): string {
  return [
    `Usage: ${PROGRAM_NAME} keygen`,
    '',
    'Prints {"publicKey":"<base64>","secretKey":"<base64>"} and a newline: the raw 32-byte Ed25519',
    'public key and the 32-byte seed that is the secret key. Register the public key with',
    `'${PROGRAM_NAME} client add <id> --public-key <base64>'; keep the secret key with the client only.`,
    '',
    '  -h, --help  print this help',
    '',
  ].join('\n');
}

async function runKeygen(ctx: CliContext): Promise<number> {
  if (ctx.argv.length === 1 && (ctx.argv[0] === '--help' || ctx.argv[0] === '-h')) {
    ctx.stdout(keygenUsage());
    return EXIT_OK;
  }
  if (ctx.argv.length > 0) return usageError(ctx, `keygen takes no arguments, got '${ctx.argv[0]}'`);
  const { publicKey, secretKey } = generateSigningKeyPair();
  const output = {
    publicKey: Buffer.from(publicKey).toString('base64'),
    secretKey: Buffer.from(secretKey).toString('base64'),
  };
  ctx.stdout(`${JSON.stringify(output)}\n`);
  return EXIT_OK;
}
