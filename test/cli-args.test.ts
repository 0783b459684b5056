import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  helpText,
  parseCommand,
  parseDuration,
  parseInteger,
  parseIntegerList,
  UsageError,
  type CommandSpec,
  type OptionSpec,
} from "../src/cli/args.js";
import { resolveTarget } from "../src/client/client.js";
import { benchOptionsFrom, benchSpec, ceilingOptionsFrom } from "../src/cli/commands/bench.js";

const spec = {
  name: "demo",
  summary: "A demo command.",
  usage: "medsynth demo <input> [options]",
  options: {
    out: { type: "string", short: "o", placeholder: "dir", description: "output folder", default: "out" },
    quiet: { type: "boolean", short: "q", description: "no progress" },
  },
  positionals: { min: 1, max: 1 },
} satisfies CommandSpec<Record<string, OptionSpec>>;

describe("CLI arguments", () => {
  it("parses options with defaults and positionals", () => {
    const parsed = parseCommand(spec, ["in", "-q"])!;
    assert.deepEqual({ ...parsed.values }, { out: "out", quiet: true });
    assert.deepEqual(parsed.positionals, ["in"]);
  });

  it("prints help with every option and its default, and returns nothing to run", () => {
    let printed = "";
    assert.equal(parseCommand(spec, ["--help"], (text) => (printed += text)), undefined);
    assert.equal(printed, helpText(spec));
    assert.match(printed, /Usage: medsynth demo <input> \[options\]/);
    assert.match(printed, /-o, --out <dir>\s+output folder \(default: out\)/);
    assert.match(printed, /-h, --help\s+show this help/);
  });

  it("rejects unknown flags and wrong argument counts as usage errors", () => {
    assert.throws(() => parseCommand(spec, ["in", "--nope"]), UsageError);
    assert.throws(() => parseCommand(spec, []), /expected 1 argument\(s\), got 0/);
    assert.throws(() => parseCommand(spec, ["a", "b"]), /expected 1 argument\(s\), got 2/);
  });

  it("reads durations, whole numbers and lists", () => {
    assert.equal(parseDuration("30s", "duration"), 30_000);
    assert.equal(parseDuration("250ms", "duration"), 250);
    assert.equal(parseDuration("1.5m", "duration"), 90_000);
    assert.equal(parseDuration("2", "duration"), 2_000);
    assert.throws(() => parseDuration("soon", "duration"), /--duration "soon": use a duration such as 30s/);
    assert.throws(() => parseDuration("0s", "duration"), /greater than 0/);
    assert.deepEqual(parseIntegerList("1, 4,16", "concurrency"), [1, 4, 16]);
    assert.throws(() => parseIntegerList("1,0", "concurrency"), /--concurrency "0"/);
    assert.throws(() => parseIntegerList(" , ", "concurrency"), /give at least one number/);
    assert.equal(parseDuration("0s", "raw-duration", { allowZero: true }), 0);
    assert.equal(parseDuration("0", "raw-duration", { allowZero: true }), 0);
    assert.equal(parseInteger("0", "warmup", 0), 0);
    assert.throws(() => parseInteger("2.5", "count"), /whole number/);
  });

  it("turns bench flags into options, with server flags validated as serve validates them", () => {
    const parsed = parseCommand(benchSpec, ["--count", "20", "--concurrency", "1,2", "--max-batch", "4", "--raw-duration", "0"])!;
    const options = benchOptionsFrom(parsed.values);
    assert.equal(options.count, 20);
    assert.equal(options.durationMs, undefined);
    assert.deepEqual(options.concurrency, [1, 2]);
    assert.equal(options.server.maxBatch, 4);
    assert.equal(options.rawDurationMs, 0);
    assert.equal(options.target, undefined);
    const bad = parseCommand(benchSpec, ["--max-batch", "0"])!;
    assert.throws(() => benchOptionsFrom(bad.values), /--max-batch=0/);
    const both = parseCommand(benchSpec, ["--count", "5", "--duration", "5s"])!;
    assert.throws(() => benchOptionsFrom(both.values), /exclude each other/);
    assert.throws(() => benchOptionsFrom(parseCommand(benchSpec, ["--rounds", "3"])!.values), /--rounds repeats the --ceiling levels/);
    assert.equal(ceilingOptionsFrom(parseCommand(benchSpec, ["--ceiling"])!.values).rounds, undefined); // runCeiling's default
    assert.equal(ceilingOptionsFrom(parseCommand(benchSpec, ["--ceiling", "--rounds", "5"])!.values).rounds, 5);
    assert.equal(benchOptionsFrom(parseCommand(benchSpec, ["--size", "1024"])!.values).syntheticSize, 1024);
    const sized = parseCommand(benchSpec, ["--size", "1024", "--input", "slices/"])!;
    assert.throws(() => benchOptionsFrom(sized.values), /--input and --size exclude each other/);
  });
});

describe("client targets", () => {
  it("passes one target through and joins several IP addresses for round-robin", () => {
    assert.equal(resolveTarget("dns:///medsynth.example:50051"), "dns:///medsynth.example:50051");
    assert.equal(resolveTarget(["127.0.0.1:1", "127.0.0.1:2"]), "ipv4:127.0.0.1:1,127.0.0.1:2");
    assert.equal(resolveTarget("127.0.0.1:1, 10.0.0.2:2"), "ipv4:127.0.0.1:1,10.0.0.2:2");
    assert.equal(resolveTarget(["[::1]:1", "[::1]:2"]), "ipv6:[::1]:1,[::1]:2");
  });

  it("explains what to do with several host names or a missing port", () => {
    assert.throws(() => resolveTarget(["a.example:1", "b.example:1"]), /dns:\/\/\/name:port/);
    assert.throws(() => resolveTarget(["127.0.0.1", "127.0.0.1:2"]), /"127.0.0.1" is not host:port/);
    assert.throws(() => resolveTarget([]), /no target given/);
  });
});
