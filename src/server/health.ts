import { create } from "@bufbuild/protobuf";
import { status, type ServerWritableStream } from "@grpc/grpc-js";
import type { ServiceImpl } from "../contract/service.js";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
  type HealthCheckRequest,
  type HealthCheckResponse,
} from "../gen/grpc/health/v1/health_pb.js";

export { ServingStatus };

/**
 * grpc.health.v1 for the whole server ("") and each named service. Watchers
 * get the current status at once and every change after.
 */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<ServerWritableStream<HealthCheckRequest, HealthCheckResponse>>>();

  constructor(services: readonly string[], initial: ServingStatus = ServingStatus.NOT_SERVING) {
    for (const name of ["", ...services]) this.statuses.set(name, initial);
  }

  /** A service's status now ("" = the whole server); undefined for a service it does not know. */
  status(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Sets every service's status; watchers hear of changes only. */
  setAll(next: ServingStatus): void {
    for (const [name, current] of this.statuses) {
      if (current === next) continue;
      this.statuses.set(name, next);
      for (const call of this.watchers.get(name) ?? []) call.write(create(HealthCheckResponseSchema, { status: next }));
    }
  }

  /** Ends open Watch calls, so a graceful shutdown is not held up by them. */
  endWatches(): void {
    for (const set of this.watchers.values()) for (const call of set) call.end();
    this.watchers.clear();
  }

  readonly implementation: ServiceImpl<typeof Health> = {
    check: (call, callback) => {
      const current = this.status(call.request.service);
      if (current === undefined) callback({ code: status.NOT_FOUND, details: `unknown service "${call.request.service}"` });
      else callback(null, create(HealthCheckResponseSchema, { status: current }));
    },
    watch: (call) => {
      const name = call.request.service;
      call.write(create(HealthCheckResponseSchema, { status: this.statuses.get(name) ?? ServingStatus.SERVICE_UNKNOWN }));
      const set = this.watchers.get(name) ?? new Set();
      set.add(call);
      this.watchers.set(name, set);
      call.on("cancelled", () => set.delete(call));
    },
  };
}
