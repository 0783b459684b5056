// TLS, mTLS, bearer tokens and the health-only probe port, on the real server
// (tiny fixture models) with the real client library, against a throwaway PKI
// made with openssl for this run.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { credentials, status, type ChannelCredentials } from "@grpc/grpc-js";
import { createClient, type ClientOptions } from "../src/client/client.js";
import { TranslatorError } from "../src/client/errors.js";
import { Direction } from "../src/gen/medsynth/v1/translator_pb.js";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../src/gen/grpc/health/v1/health_pb.js";
import { checkHealth } from "../src/cli/healthcheck.js";
import { createLogger } from "../src/server/log.js";
import { startServer } from "../src/server/server.js";
import { bearerCallCredentials, bearerMetadata, channelCredentials, SecurityConfigError } from "../src/contract/credentials.js";
import { loadAuthTokens, parseAuthTokens, serverTls } from "../src/server/security.js";
import { makeTestPki, type TestPki } from "./helpers/certs.js";
import { freePort } from "./helpers/net.js";
import { mrImage, useTestServer } from "./helpers/service.js";

const run = promisify(execFile);

/** ListModels through the client library; resolves with the status code (OK = 0). */
async function listModelsStatus(address: string, options: ClientOptions): Promise<number> {
  const client = createClient(address, { deadlineMs: 5000, ...options });
  try {
    await client.listModels();
    return status.OK;
  } catch (error) {
    assert.ok(error instanceof TranslatorError, `expected a TranslatorError, got ${String(error)}`);
    return error.code;
  } finally {
    client.close();
  }
}

async function rejection(promise: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code: number; details: string };
  }
  assert.fail("expected the call to fail");
}

describe("mutual TLS and the health-only probe port", () => {
  let pki: TestPki;
  let healthPort: number;
  const mtls = (): ChannelCredentials => channelCredentials({ ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey });

  before(async () => {
    pki = makeTestPki();
    healthPort = await freePort();
  });
  after(() => pki?.remove());
  const served = useTestServer(() => ({ tlsCert: pki.serverCert, tlsKey: pki.serverKey, tlsClientCa: pki.caCert, healthPort }));

  it("serves a client that trusts the CA and presents a certificate it signed", async () => {
    assert.equal(await listModelsStatus(served.server.address, { credentials: mtls() }), status.OK);
    // The host name in the certificate works as well as its IP address.
    assert.equal(await listModelsStatus(`localhost:${served.server.port}`, { credentials: mtls() }), status.OK);
  });

  it("fails a plaintext client on the TLS port", async () => {
    assert.equal(await listModelsStatus(served.server.address, {}), status.UNAVAILABLE);
  });

  it("refuses a TLS client without a client certificate", async () => {
    assert.equal(await listModelsStatus(served.server.address, { credentials: channelCredentials({ ca: pki.caCert }) }), status.UNAVAILABLE);
  });

  it("refuses a client certificate from a CA it does not trust", async () => {
    const rogue = channelCredentials({ ca: pki.caCert, cert: pki.rogueClientCert, key: pki.rogueClientKey });
    assert.equal(await listModelsStatus(served.server.address, { credentials: rogue }), status.UNAVAILABLE);
  });

  it("is refused by a client that does not trust the server's CA", async () => {
    const wrongRoot = channelCredentials({ ca: pki.rogueCaCert, cert: pki.clientCert, key: pki.clientKey });
    assert.equal(await listModelsStatus(served.server.address, { credentials: wrongRoot }), status.UNAVAILABLE);
  });

  it("answers health checks in plaintext on the probe port and refuses every other call there", async () => {
    const probeAddress = `127.0.0.1:${healthPort}`;
    assert.equal(await checkHealth(probeAddress), ServingStatus.SERVING);
    assert.equal(await checkHealth(probeAddress, { service: "medsynth.v1.Translator" }), ServingStatus.SERVING);
    assert.equal(await listModelsStatus(probeAddress, {}), status.PERMISSION_DENIED);
    // Health over mTLS on the main port too.
    assert.equal(await checkHealth(served.server.address, { credentials: mtls() }), ServingStatus.SERVING);
  });

  it("the container's healthcheck script exits 0 on SERVING and 1 when nothing answers", async () => {
    // The compiled entry point the Dockerfile's HEALTHCHECK runs (npm test builds dist/ first).
    const script = "dist/src/cli/healthcheck.js";
    const env = { ...process.env, MEDSYNTH_HEALTH_PORT: String(healthPort) };
    const { stdout } = await run(process.execPath, [script], { env });
    assert.match(stdout, /SERVING/);
    // Over mTLS on the main port, as an exec probe would with TLS only.
    await run(process.execPath, [script, "--address", served.server.address, "--tls-ca", pki.caCert, "--tls-cert", pki.clientCert, "--tls-key", pki.clientKey]);
    const down = await rejection(run(process.execPath, [script, "--address", `127.0.0.1:${await freePort()}`, "--timeout-ms", "2000"]));
    assert.equal(down.code, 1);
  });
});

describe("bearer tokens", () => {
  let pki: TestPki;
  const logs: string[] = [];
  const plainToken = "plain-token-0123456789abcdef";
  const hashedToken = "hashed-token-fedcba9876543210";
  const tls = (): ChannelCredentials => channelCredentials({ ca: pki.caCert });

  before(async () => {
    pki = makeTestPki();
    const tokensFile = join(pki.dir, "tokens");
    writeFileSync(
      tokensFile,
      [
        "# medsynth callers",
        plainToken,
        "",
        `sha256:${createHash("sha256").update(hashedToken).digest("hex")}`,
      ].join("\n"),
    );
  });
  after(() => pki?.remove());
  // Server-only TLS (no client certificates) with tokens, logging everything.
  const served = useTestServer(
    () => ({ tlsCert: pki.serverCert, tlsKey: pki.serverKey, authTokensFile: join(pki.dir, "tokens"), logLevel: "debug" }),
    { log: createLogger("debug", (line) => logs.push(line)) },
  );

  it("accepts a listed token and the token whose SHA-256 is listed", async () => {
    assert.equal(await listModelsStatus(served.server.address, { credentials: tls(), token: plainToken }), status.OK);
    assert.equal(await listModelsStatus(served.server.address, { credentials: tls(), token: hashedToken }), status.OK);
  });

  it("accepts the token as call credentials composed with TLS", async () => {
    const composed = credentials.combineChannelCredentials(tls(), bearerCallCredentials(plainToken));
    assert.equal(await listModelsStatus(served.server.address, { credentials: composed }), status.OK);
  });

  it("answers UNAUTHENTICATED for a missing, wrong or malformed token, on unary calls and streams", async () => {
    assert.equal(await listModelsStatus(served.server.address, { credentials: tls() }), status.UNAUTHENTICATED);
    assert.equal(await listModelsStatus(served.server.address, { credentials: tls(), token: `${plainToken}x` }), status.UNAUTHENTICATED);
    assert.equal(await listModelsStatus(served.server.address, { credentials: tls(), token: hashedToken.slice(1) }), status.UNAUTHENTICATED);
    const malformed = credentials.combineChannelCredentials(
      tls(),
      credentials.createFromMetadataGenerator((_p, done) => {
        const metadata = bearerMetadata(plainToken);
        metadata.set("authorization", `Basic ${plainToken}`);
        done(null, metadata);
      }),
    );
    assert.equal(await listModelsStatus(served.server.address, { credentials: malformed }), status.UNAUTHENTICATED);

    const client = createClient(served.server.address, { credentials: tls(), token: "not-a-token-at-all-000000" });
    try {
      const error = await rejection(
        (async () => {
          for await (const answer of client.translate({ direction: Direction.MR_TO_CT }, [{ index: 0n, image: mrImage() }])) void answer;
        })(),
      );
      assert.equal(error.code, status.UNAUTHENTICATED);
      assert.match(error.details, /invalid bearer token/);
    } finally {
      client.close();
    }
  });

  it("answers health checks without a token", async () => {
    assert.equal(await checkHealth(served.server.address, { credentials: tls() }), ServingStatus.SERVING);
  });

  it("a translate stream with a valid token is served", async () => {
    const client = createClient(served.server.address, { credentials: tls(), token: plainToken });
    try {
      const answers = [];
      for await (const answer of client.translate({ direction: Direction.MR_TO_CT }, [{ index: 7n, image: mrImage() }])) answers.push(answer);
      assert.equal(answers.length, 1);
      assert.equal(answers[0].$typeName, "medsynth.v1.SliceResult");
    } finally {
      client.close();
    }
  });

  it("never writes a token to the log", () => {
    const text = logs.join("");
    assert.match(text, /"authTokens":2/, "the log says how many tokens are loaded");
    for (const secret of [plainToken, hashedToken, createHash("sha256").update(hashedToken).digest("hex")]) {
      assert.ok(!text.includes(secret), "a token appeared in the log");
    }
  });
});

describe("security configuration errors", () => {
  let pki: TestPki;
  before(() => {
    pki = makeTestPki();
  });
  after(() => pki?.remove());

  it("say which option and file are wrong", () => {
    const cases: [Parameters<typeof serverTls>[0], RegExp][] = [
      [{ tlsCert: join(pki.dir, "missing.crt"), tlsKey: pki.serverKey }, /--tls-cert .*missing\.crt: cannot read the file \(ENOENT\)/],
      [{ tlsCert: pki.serverCert }, /--tls-cert and --tls-key go together/],
      [{ tlsClientCa: pki.caCert }, /--tls-client-ca needs --tls-cert and --tls-key/],
      [{ tlsCert: pki.serverCert, tlsKey: pki.clientKey }, /--tls-key .*key.*certificate/],
      [{ tlsCert: pki.serverCert, tlsKey: join(pki.dir, "server.ext") }, /--tls-key .*not PEM/],
    ];
    for (const [options, message] of cases) {
      assert.throws(() => serverTls(options), (error: Error) => error instanceof SecurityConfigError && message.test(error.message));
    }
    assert.equal(serverTls({}), undefined);
    assert.throws(() => channelCredentials({ ca: pki.caCert, cert: pki.clientCert }), /--tls-cert and --tls-key go together/);
  });

  it("tokens files: bad lines are named by number, never by content", () => {
    const secret = "short-secret";
    const cases: [string, RegExp][] = [
      ["# only a comment\n\n", /no tokens in the file/],
      [`ok-token-0123456789abcdef\n${secret}\n`, /line 2: token shorter than 16 characters/],
      ["sha256:abcd\n", /line 1: "sha256:" must be followed by 64 hex digits/],
      ["two words-0123456789abcdef\n", /line 1: a token cannot contain spaces/],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => parseAuthTokens(text, "tokens.txt"),
        (error: Error) => error instanceof SecurityConfigError && message.test(error.message) && !error.message.includes(secret),
      );
    }
    assert.throws(() => loadAuthTokens(join(pki.dir, "absent")), /--auth-tokens-file .*absent: cannot read the file \(ENOENT\)/);
    const tokens = parseAuthTokens("  spaced-token-0123456789  \r\nSHA256:" + "AB".repeat(32) + "\n", "tokens.txt");
    assert.equal(tokens.size, 2);
    assert.ok(tokens.verify("spaced-token-0123456789"));
    assert.ok(!tokens.verify("spaced-token-012345678"));
  });

  it("stop the server before it loads any model", async () => {
    await assert.rejects(
      startServer({ port: 0, metricsPort: 0, modelsDir: "no-such-models-dir", tlsCert: pki.serverCert, tlsKey: pki.caCert.replace("ca.crt", "nope.key") }, { log: createLogger("error") }),
      (error: Error) => error instanceof SecurityConfigError && /--tls-key .*nope\.key/.test(error.message),
    );
  });
});
