// The contract module: service definitions and handler types come from the
// protobuf-es descriptors. The @ts-expect-error lines are checked by tsc,
// which `npm test` runs first: each fails the build if its line compiles.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { serviceDefinition, type ServiceImpl } from "../src/contract/service.js";
import { ListModelsResponseSchema, Translator } from "../src/gen/medsynth/v1/translator_pb.js";

test("server handlers are typed from the descriptors: a renamed, missing or retyped RPC does not compile", () => {
  const handlers: ServiceImpl<typeof Translator> = {
    translate: (call) => call.end(),
    translateSlice: (_call, callback) => callback({ code: 12, details: "not here" }),
    listModels: (_call, callback) => callback(null, create(ListModelsResponseSchema)),
  };
  // @ts-expect-error a handler under a name the proto does not have (what a renamed RPC leaves behind)
  const renamed: ServiceImpl<typeof Translator> = { ...handlers, translateOneSlice: handlers.translateSlice };
  // @ts-expect-error an RPC without a handler
  const missing: ServiceImpl<typeof Translator> = { translate: handlers.translate, listModels: handlers.listModels };
  // @ts-expect-error a unary handler where the proto has a bidirectional stream
  const retyped: ServiceImpl<typeof Translator> = { ...handlers, translate: handlers.translateSlice };
  assert.ok(renamed && missing && retyped);
  const definition = serviceDefinition(Translator);
  assert.deepEqual(Object.keys(definition).sort(), Object.keys(handlers).sort());
  assert.deepEqual(
    Object.values(definition).map((m) => [m.path, m.requestStream, m.responseStream]),
    [
      ["/medsynth.v1.Translator/Translate", true, true],
      ["/medsynth.v1.Translator/TranslateSlice", false, false],
      ["/medsynth.v1.Translator/ListModels", false, false],
    ],
  );
});
