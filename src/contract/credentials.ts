/**
 * Credentials both ends build from the same files and options: PEM reading
 * (server and client TLS), client TLS channel credentials and bearer-token
 * metadata. Tokens never reach an error message; files are named by path.
 */
import { readFileSync } from "node:fs";
import { credentials, Metadata, type CallCredentials, type ChannelCredentials } from "@grpc/grpc-js";

/** A security option that cannot work as given; the message names the option and what to change. */
export class SecurityConfigError extends Error {
  override name = "SecurityConfigError";
}

/** Reads a PEM file named by `--<option>`; a missing or non-PEM file fails with a SecurityConfigError. */
export function readPem(path: string, option: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new SecurityConfigError(`--${option} ${path}: cannot read the file (${reason}); give a readable PEM file`);
  }
  if (!pem.includes("-----BEGIN ")) {
    throw new SecurityConfigError(`--${option} ${path}: not PEM (no "-----BEGIN" line); convert it with openssl`);
  }
  return pem;
}

/** Client TLS files (PEM paths). */
export interface ClientTlsFiles {
  /** CA bundle that signed the server's certificate (default: the system's roots). */
  ca?: string;
  /** Client certificate and key, for servers that require mTLS. */
  cert?: string;
  key?: string;
}

/** TLS channel credentials from PEM files; `cert` and `key` go together. */
export function channelCredentials(files: ClientTlsFiles = {}): ChannelCredentials {
  if (Boolean(files.cert) !== Boolean(files.key)) {
    throw new SecurityConfigError(`--tls-cert and --tls-key go together (got only --${files.cert ? "tls-cert" : "tls-key"})`);
  }
  return credentials.createSsl(
    files.ca ? readPem(files.ca, "tls-ca") : null,
    files.key ? readPem(files.key, "tls-key") : null,
    files.cert ? readPem(files.cert, "tls-cert") : null,
  );
}

/** `authorization: Bearer <token>` call metadata (works on any channel). */
export function bearerMetadata(token: string): Metadata {
  const metadata = new Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

/**
 * The token as call credentials, to compose with TLS channel credentials
 * (`credentials.combineChannelCredentials(channelCredentials(...), bearerCallCredentials(token))`).
 * grpc-js refuses call credentials on plaintext channels; use bearerMetadata there.
 */
export function bearerCallCredentials(token: string): CallCredentials {
  return credentials.createFromMetadataGenerator((_params, callback) => callback(null, bearerMetadata(token)));
}
