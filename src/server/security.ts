/**
 * Transport security and caller authentication for the gRPC server (the
 * client side's credentials are in contract/credentials.ts).
 *
 * - TLS, optionally mutual (client certificates signed by --tls-client-ca).
 * - Bearer tokens from --auth-tokens-file, checked in a server interceptor on
 *   every call except grpc.health.v1 (probes carry no credentials).
 * - A plaintext health-only port for the kubelet's gRPC probes, which cannot
 *   speak TLS: every other call on that port is refused.
 *
 * Tokens never reach a log or an error message: files are reported by path
 * and line number, callers get "invalid bearer token".
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { ServerCredentials, ServerInterceptingCall, status, type ServerInterceptor } from "@grpc/grpc-js";
import { readPem, SecurityConfigError } from "../contract/credentials.js";

/** Server TLS files (PEM). No certificate and key: plaintext. */
export interface ServerTlsOptions {
  /** Certificate chain, leaf first (default "": plaintext). */
  tlsCert?: string;
  /** Private key of the certificate (default ""). */
  tlsKey?: string;
  /** CA bundle; when set, every client must present a certificate it signed (mTLS) (default ""). */
  tlsClientCa?: string;
}

/** The PEM material of a TLS port: certificate chain, key, and the CA clients must be signed by (mTLS), if any. */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  clientCa: Buffer | undefined;
}

/**
 * The TLS material both ports serve: none when no certificate is given.
 * Files are read and the key checked against the certificate now, so a bad
 * file fails start-up instead of the first handshake.
 */
export function serverTls(options: ServerTlsOptions): ServerTls | undefined {
  const { tlsCert, tlsKey, tlsClientCa } = options;
  if (!tlsCert && !tlsKey) {
    if (tlsClientCa) {
      throw new SecurityConfigError("--tls-client-ca needs --tls-cert and --tls-key: client certificates are checked only over TLS");
    }
    return undefined;
  }
  if (!tlsCert || !tlsKey) {
    throw new SecurityConfigError(`--tls-cert and --tls-key go together (got only --${tlsCert ? "tls-cert" : "tls-key"})`);
  }
  const cert = readPem(tlsCert, "tls-cert");
  const key = readPem(tlsKey, "tls-key");
  const clientCa = tlsClientCa ? readPem(tlsClientCa, "tls-client-ca") : undefined;
  try {
    createSecureContext({ cert, key, ca: clientCa });
  } catch (error) {
    throw new SecurityConfigError(
      `--tls-cert ${tlsCert} / --tls-key ${tlsKey}${clientCa ? ` / --tls-client-ca ${tlsClientCa}` : ""}: ` +
        `${(error as Error).message} (is the key the certificate's, and are the files PEM?)`,
    );
  }
  return { cert, key, clientCa };
}

/** grpc-js server credentials: insecure without TLS material, TLS otherwise, requiring a client certificate when there is a client CA. */
export function serverCredentials(tls: ServerTls | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  const clientCa = tls.clientCa ?? null;
  return ServerCredentials.createSsl(clientCa, [{ cert_chain: tls.cert, private_key: tls.key }], clientCa !== null);
}

// ---- bearer tokens -----------------------------------------------------------

/** The accepted tokens, held only as SHA-256 digests. */
export interface AuthTokens {
  readonly size: number;
  /** Constant-time: compares the presented token's digest with every accepted digest. */
  verify(token: string): boolean;
}

const sha256 = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest();

/** Plain tokens shorter than this are refused: they can be guessed. */
const MIN_TOKEN_LENGTH = 16;

/**
 * Parses a tokens file: one token per line, or `sha256:<64 hex digits>` (the
 * SHA-256 of the token, so the file need not hold the secret). Blank lines and
 * lines starting with # are skipped. `source` names the file in errors.
 */
export function parseAuthTokens(text: string, source: string): AuthTokens {
  const digests: Buffer[] = [];
  text.split(/\r?\n/).forEach((raw, at) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const where = `--auth-tokens-file ${source} line ${at + 1}`;
    const hashed = /^sha256:(.*)$/i.exec(line);
    if (hashed) {
      if (!/^[0-9a-f]{64}$/i.test(hashed[1])) throw new SecurityConfigError(`${where}: "sha256:" must be followed by 64 hex digits`);
      digests.push(Buffer.from(hashed[1], "hex"));
    } else if (/\s/.test(line)) {
      throw new SecurityConfigError(`${where}: a token cannot contain spaces`);
    } else if (line.length < MIN_TOKEN_LENGTH) {
      throw new SecurityConfigError(`${where}: token shorter than ${MIN_TOKEN_LENGTH} characters; make one with \`openssl rand -hex 32\``);
    } else {
      digests.push(sha256(line));
    }
  });
  if (digests.length === 0) {
    throw new SecurityConfigError(`--auth-tokens-file ${source}: no tokens in the file, so every call would be refused`);
  }
  return {
    size: digests.length,
    verify(token) {
      const presented = sha256(token);
      let match = false;
      // No early exit: the time taken does not tell which digest matched.
      for (const digest of digests) match = timingSafeEqual(digest, presented) || match;
      return match;
    },
  };
}

/** Reads and parses --auth-tokens-file. */
export function loadAuthTokens(path: string): AuthTokens {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new SecurityConfigError(`--auth-tokens-file ${path}: cannot read the file (${reason})`);
  }
  return parseAuthTokens(text, path);
}

const HEALTH_PATH_PREFIX = "/grpc.health.v1.Health/";
export const isHealthCall = (path: string): boolean => path.startsWith(HEALTH_PATH_PREFIX);

/** Why the call's `authorization` metadata (or header) is refused, or undefined when it carries an accepted token. */
export function bearerProblem(values: readonly (string | Buffer)[], tokens: AuthTokens): string | undefined {
  if (values.length === 0) return "missing `authorization: Bearer <token>` metadata; this server requires a token";
  if (values.length > 1) return "more than one authorization value; send exactly one";
  const match = /^Bearer\s+(\S+)\s*$/i.exec(values[0].toString());
  if (!match) return "authorization metadata must be `Bearer <token>`";
  return tokens.verify(match[1]) ? undefined : "invalid bearer token";
}

/**
 * Server interceptor: every call except grpc.health.v1 must carry
 * `authorization: Bearer <token>` with an accepted token, else it ends with
 * UNAUTHENTICATED before the handler runs. The header is removed before the
 * handler sees the metadata, so it cannot end up in a log.
 */
export function tokenAuthInterceptor(tokens: AuthTokens): ServerInterceptor {
  return (method, call) =>
    new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            if (isHealthCall(method.path)) return pass(metadata);
            const problem = bearerProblem(metadata.get("authorization"), tokens);
            if (problem) return call.sendStatus({ code: status.UNAUTHENTICATED, details: problem });
            metadata.remove("authorization");
            pass(metadata);
          },
        }),
    });
}

/**
 * Server interceptor for the plaintext probe port (--health-port): calls that
 * arrive on a port in `healthPorts` may only be grpc.health.v1; anything else
 * ends with PERMISSION_DENIED, so the port without TLS or tokens exposes
 * nothing but serving status. Add the bound port to the set after binding.
 */
export function healthOnlyInterceptor(healthPorts: ReadonlySet<number>): ServerInterceptor {
  return (method, call) =>
    new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const port = call.getConnectionInfo().localPort;
            if (port === undefined || !healthPorts.has(port) || isHealthCall(method.path)) return pass(metadata);
            call.sendStatus({
              code: status.PERMISSION_DENIED,
              details: `port ${port} serves only grpc.health.v1 (the probe port); call the service's gRPC port`,
            });
          },
        }),
    });
}
