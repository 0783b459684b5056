import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_BATCHER_OPTIONS } from "../src/batcher/micro-batcher.js";
import { DEFAULT_UID_ROOT } from "../src/imaging/dicom-uid.js";
import { DEFAULT_ORT_POOL_OPTIONS } from "../src/inference/ort-pool.js";
import { DEFAULT_TRANSFORM_POOL_OPTIONS } from "../src/inference/transform-pool.js";
import { DEFAULT_QUALITY_POOL_OPTIONS } from "../src/quality/quality-pool.js";
import { DEFAULT_IN_FLIGHT } from "../src/server/admission.js";
import { ConfigError, DEFAULT_CONFIG, parseServerConfig, usage } from "../src/server/config.js";
import { DEFAULT_LIMITS } from "../src/server/limits.js";

describe("server configuration", () => {
  it("takes each default from the component that owns the option", () => {
    const { maxBatch, maxDelayMs, maxQueue, workers, device, deviceId, batchDeadlineFactor, batchDeadlineMinMs, metricsWorkers, transformWorkers } = DEFAULT_CONFIG;
    const { window, windowBytes, maxInflightBytes, dicomUidRoot } = DEFAULT_CONFIG;
    assert.deepEqual({ maxBatch, maxDelayMs, maxQueue }, DEFAULT_BATCHER_OPTIONS);
    assert.deepEqual({ workers, device, deviceId, batchDeadlineFactor, batchDeadlineMinMs }, DEFAULT_ORT_POOL_OPTIONS);
    assert.equal(metricsWorkers, DEFAULT_QUALITY_POOL_OPTIONS.workers);
    assert.equal(transformWorkers, DEFAULT_TRANSFORM_POOL_OPTIONS.workers);
    assert.deepEqual({ window, windowBytes, maxInflightBytes }, DEFAULT_IN_FLIGHT);
    assert.equal(dicomUidRoot, DEFAULT_UID_ROOT);
    for (const [key, value] of Object.entries(DEFAULT_LIMITS)) assert.equal(DEFAULT_CONFIG[key as keyof typeof DEFAULT_LIMITS], value, key);
  });

  it("prints every option in --help with its variable, default and meaning", () => {
    const text = usage();
    for (const key of Object.keys(DEFAULT_CONFIG)) {
      const flag = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      const line = text.split("\n").find((l) => l.trimStart().startsWith(`--${flag} `));
      assert.ok(line, `--${flag} is listed`);
      assert.match(line, new RegExp(` MEDSYNTH_${flag.replace(/-/g, "_").toUpperCase()} +\\S+ +\\S.*$`), `--${flag}: variable, default, meaning`);
    }
    assert.match(text, /--max-batch +MEDSYNTH_MAX_BATCH +8 +largest inference batch/);
    assert.match(text, /--tls-cert +MEDSYNTH_TLS_CERT +"" +PEM certificate chain/);
  });

  it("lets flags win over the environment, and the environment over defaults", () => {
    const config = parseServerConfig(["--max-batch", "4", "--device", "auto"], { MEDSYNTH_MAX_BATCH: "16", MEDSYNTH_WORKERS: "3" });
    assert.deepEqual([config.maxBatch, config.workers, config.device, config.port], [4, 3, "auto", DEFAULT_CONFIG.port]);
  });

  it("refuses values outside an option's bounds or choices, naming the flag or variable", () => {
    const refused: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [["--port", "70000"], {}, /^--port=70000: expected an integer >= 0 and <= 65535$/],
      [["--workers", "0"], {}, /^--workers=0: expected an integer >= 1$/],
      [["--max-delay-ms", "1.5"], {}, /^--max-delay-ms=1\.5: expected an integer >= 0$/],
      [[], { MEDSYNTH_DEVICE: "tpu" }, /^MEDSYNTH_DEVICE=tpu: expected one of cpu, cuda, auto$/],
      [["--log-level", "trace"], {}, /^--log-level=trace: expected one of debug, info, warn, error$/],
      [["--dicom-uid-root", "1.02"], {}, /^--dicom-uid-root=1\.02: UID root "1\.02" is not a valid UID/],
      [["--no-such-flag", "1"], {}, /Unknown option '--no-such-flag'/],
    ];
    for (const [argv, env, message] of refused) {
      assert.throws(() => parseServerConfig(argv, env), (error: Error) => error instanceof ConfigError && message.test(error.message), argv.join(" "));
    }
  });
});
