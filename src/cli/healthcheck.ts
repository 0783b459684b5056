#!/usr/bin/env node
/**
 * `node dist/src/cli/healthcheck.js [flags]`: one grpc.health.v1 Check.
 * Exit 0 when the service is SERVING, 1 otherwise (NOT_SERVING, unknown
 * service, no answer, bad flags): the container HEALTHCHECK and exec probes
 * run it. By default it asks 127.0.0.1 on MEDSYNTH_HEALTH_PORT (the plaintext
 * probe port), else MEDSYNTH_PORT, else 50051.
 */
import { create } from "@bufbuild/protobuf";
import { Client, credentials as grpcCredentials, type ChannelCredentials, type ServiceError } from "@grpc/grpc-js";
import { parseCommand, parseInteger, UsageError } from "./args.js";
import { serviceDefinition } from "../contract/service.js";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../gen/grpc/health/v1/health_pb.js";
import { isEntryPoint } from "../entry-point.js";
import { channelCredentials } from "../contract/credentials.js";

export interface HealthCheckOptions {
  /** Service name; "" (default) is the whole server. */
  service?: string;
  /** Deadline of the call, ms (default 3000). */
  timeoutMs?: number;
  /** Default plaintext. */
  credentials?: ChannelCredentials;
  /** Name to verify the server certificate against when it differs from the address's host. */
  serverName?: string;
}

/** Calls grpc.health.v1.Health/Check at `address` and resolves with the serving status. */
export function checkHealth(address: string, options: HealthCheckOptions = {}): Promise<ServingStatus> {
  const { check } = serviceDefinition(Health);
  const client = new Client(
    address,
    options.credentials ?? grpcCredentials.createInsecure(),
    options.serverName ? { "grpc.ssl_target_name_override": options.serverName } : {},
  );
  return new Promise<ServingStatus>((resolve, reject) => {
    client.makeUnaryRequest(
      check.path,
      check.requestSerialize,
      check.responseDeserialize,
      create(HealthCheckRequestSchema, { service: options.service ?? "" }),
      { deadline: Date.now() + (options.timeoutMs ?? 3000) },
      (error: ServiceError | null, response) => (error || !response ? reject(error) : resolve(response.status)),
    );
  }).finally(() => client.close());
}

const COMMAND = {
  name: "healthcheck",
  summary: "Asks a medsynth server for its grpc.health.v1 status; exit 0 when SERVING, else 1.",
  usage: "node dist/src/cli/healthcheck.js [options]",
  options: {
    address: { type: "string", placeholder: "host:port", description: "server to ask (default 127.0.0.1:$MEDSYNTH_HEALTH_PORT, else $MEDSYNTH_PORT, else 50051)" },
    service: { type: "string", placeholder: "name", description: 'service to ask about; "" is the whole server', default: "" },
    "timeout-ms": { type: "string", placeholder: "ms", description: "deadline of the check", default: "3000" },
    "tls-ca": { type: "string", placeholder: "pem", description: "dial with TLS, trusting this CA" },
    "tls-cert": { type: "string", placeholder: "pem", description: "client certificate, for mTLS" },
    "tls-key": { type: "string", placeholder: "pem", description: "client key, for mTLS" },
    "tls-server-name": { type: "string", placeholder: "name", description: "name the server certificate must carry, if not the address's host" },
  },
} as const;

function defaultAddress(env: NodeJS.ProcessEnv): string {
  const healthPort = env.MEDSYNTH_HEALTH_PORT && env.MEDSYNTH_HEALTH_PORT !== "0" ? env.MEDSYNTH_HEALTH_PORT : undefined;
  return `127.0.0.1:${healthPort ?? env.MEDSYNTH_PORT ?? "50051"}`;
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommand(COMMAND, argv);
  if (!parsed) return 0;
  const { values } = parsed;
  const tls = values["tls-ca"] || values["tls-cert"] || values["tls-key"];
  const address = values.address ?? defaultAddress(process.env);
  const status = await checkHealth(address, {
    service: values.service,
    timeoutMs: parseInteger(values["timeout-ms"], "timeout-ms"),
    credentials: tls ? channelCredentials({ ca: values["tls-ca"], cert: values["tls-cert"], key: values["tls-key"] }) : undefined,
    serverName: values["tls-server-name"],
  });
  process.stdout.write(`${address} ${values.service || "(server)"}: ${ServingStatus[status]}\n`);
  return status === ServingStatus.SERVING ? 0 : 1;
}

if (isEntryPoint(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2)).catch((error: unknown) => {
    const reason = error instanceof UsageError ? error.message : ((error as ServiceError).details ?? (error as Error).message);
    process.stderr.write(`healthcheck: ${reason}\n`);
    return 1;
  });
}
