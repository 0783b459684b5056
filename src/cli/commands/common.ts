import { ConfigError, parseServerConfig, type ServerConfig } from "../../server/config.js";
import type { OptionSpec } from "../args.js";
import { UsageError } from "../args.js";
import type { ClientOptions } from "../../client/client.js";
import { openService, type ServiceAccess } from "../service.js";

/** Options every command that talks to the service shares. */
export const CONNECTION_OPTIONS = {
  target: {
    type: "string",
    placeholder: "host:port[,host:port]",
    description: "the service to use; several addresses are balanced round-robin (default: run the service in this process)",
  },
  "models-dir": {
    type: "string",
    placeholder: "dir",
    description: "models of the in-process service (ignored with --target)",
    default: "models",
  },
  tls: { type: "boolean", description: "connect with TLS (the system's roots unless --tls-ca)" },
  "tls-ca": { type: "string", placeholder: "pem", description: "CA that signed the server's certificate (implies --tls)" },
  "tls-cert": { type: "string", placeholder: "pem", description: "client certificate, for servers that require mTLS (with --tls-key)" },
  "tls-key": { type: "string", placeholder: "pem", description: "client certificate's key" },
  token: { type: "string", placeholder: "token", description: "bearer token (default: $MEDSYNTH_TOKEN)" },
} satisfies Record<string, OptionSpec>;

interface ConnectionValues {
  target?: string;
  "models-dir": string;
  tls: boolean;
  "tls-ca"?: string;
  "tls-cert"?: string;
  "tls-key"?: string;
  token?: string;
}

export function clientOptionsFrom(values: ConnectionValues): ClientOptions {
  const token = values.token ?? process.env.MEDSYNTH_TOKEN;
  const files = { ca: values["tls-ca"], cert: values["tls-cert"], key: values["tls-key"] };
  const tls = values.tls || Object.values(files).some(Boolean);
  return { ...(tls ? { tls: files } : {}), ...(token ? { token } : {}) };
}

/**
 * The in-process server's configuration: MEDSYNTH_* environment and
 * `serverArgs` flags, as `medsynth serve` reads them.
 */
export function embeddedConfig(modelsDir: string, serverArgs: string[] = []): ServerConfig {
  try {
    return parseServerConfig(["--models-dir", modelsDir, ...serverArgs], process.env);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message.split("\n")[0]);
    throw error;
  }
}

/** --target, or the service in this process. */
export function connect(values: ConnectionValues, serverArgs: string[] = []): Promise<ServiceAccess> {
  return openService(values.target, embeddedConfig(values["models-dir"], serverArgs), clientOptionsFrom(values));
}
