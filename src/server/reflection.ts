import { toBinary } from "@bufbuild/protobuf";
import type { GenFile } from "@bufbuild/protobuf/codegenv2";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { Server } from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";

/**
 * Server reflection from the compiled-in descriptors: @grpc/reflection reads
 * `fileDescriptorProtos` per service, which protobuf-es can give without any
 * .proto file at run time.
 */
export function addReflection(server: Server, files: readonly GenFile[]): void {
  const definition = Object.fromEntries(
    files.flatMap((file) =>
      file.services.map((service) => [
        service.typeName,
        { fileDescriptorProtos: [Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto))] },
      ]),
    ),
  );
  // The package-definition type wants method maps too; reflection only reads fileDescriptorProtos.
  new ReflectionService(definition as unknown as ConstructorParameters<typeof ReflectionService>[0]).addToServer(server);
}
