// A real Orthanc (Debian's `orthanc` + `orthanc-dicomweb`, installed by
// .ci/run) for the STOW-RS tests: started on a free loopback port with a
// throwaway configuration (DICOMweb plugin on, its own storage folder, basic
// auth, no DICOM port), read back through its REST API, stopped after.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./net.js";
import { until } from "./until.js";

/** Where Debian's orthanc-dicomweb package puts the plugin. */
export const DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";
const ORTHANC = existsSync("/usr/sbin/Orthanc") ? "/usr/sbin/Orthanc" : "Orthanc";

export interface TestOrthanc {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** The DICOMweb root to give --stow-url. */
  readonly dicomWebUrl: string;
  readonly user: string;
  readonly password: string;
  /** GET a REST resource as JSON (authenticated). */
  get<T>(path: string): Promise<T>;
  /** GET a REST resource's bytes (authenticated). */
  bytes(path: string): Promise<Uint8Array>;
  stop(): Promise<void>;
}

export async function startOrthanc(dir: string): Promise<TestOrthanc> {
  if (!existsSync(DICOMWEB_PLUGIN)) throw new Error(`${DICOMWEB_PLUGIN} is missing: apt-get install orthanc orthanc-dicomweb (.ci/run does)`);
  const port = await freePort();
  const user = "medsynth";
  const password = "orthanc-test-password-1f7e";
  mkdirSync(join(dir, "storage"), { recursive: true });
  const config = join(dir, "orthanc.json");
  writeFileSync(
    config,
    JSON.stringify({
      Name: "medsynth-test",
      StorageDirectory: join(dir, "storage"),
      IndexDirectory: join(dir, "storage"),
      HttpPort: port,
      RemoteAccessAllowed: false,
      AuthenticationEnabled: true,
      RegisteredUsers: { [user]: password },
      DicomServerEnabled: false,
      HttpsCACertificates: "",
      Plugins: [DICOMWEB_PLUGIN],
      DicomWeb: { Enable: true, Root: "/dicom-web/" },
      SaveJobs: false,
      ConcurrentJobs: 1,
    }),
  );
  const child: ChildProcess = spawn(ORTHANC, [config], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
  let exited = false;
  child.once("exit", () => (exited = true));
  const url = `http://127.0.0.1:${port}`;
  const authorization = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
  const request = async (path: string) => {
    const response = await fetch(`${url}${path}`, { headers: { authorization } });
    if (!response.ok) throw new Error(`Orthanc GET ${path}: ${response.status} ${await response.text()}`);
    return response;
  };
  await until(
    async () => {
      if (exited) throw new Error(`Orthanc exited at start:\n${log}`);
      return request("/system").then(
        () => true,
        () => false,
      );
    },
    () => `Orthanc to answer on ${url}:\n${log}`,
    30_000,
  );
  return {
    url,
    dicomWebUrl: `${url}/dicom-web`,
    user,
    password,
    get: async <T>(path: string) => (await (await request(path)).json()) as T,
    bytes: async (path: string) => new Uint8Array(await (await request(path)).arrayBuffer()),
    stop: async () => {
      if (exited) return;
      const gone = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await gone;
    },
  };
}
