# syntax=docker/dockerfile:1
#
# medsynth: gRPC MR<->CT synthesis service. NOT FOR CLINICAL USE.
#
#   GPU image (default target): docker build -t medsynth:gpu .
#   CPU image:                  docker build --target cpu -t medsynth:cpu .
#
# Both run the same compiled entry points the test suite runs
# (dist/src/server/main.js, dist/src/cli/healthcheck.js). See deploy/README.md.

ARG NODE_IMAGE=node:20-bookworm-slim
# CUDA 13 + cuDNN 9, from evidence (deploy/cuda-provider.json): onnxruntime-node
# 1.30 fetches its CUDA provider from NuGet (Microsoft.ML.OnnxRuntime.Gpu.Linux
# 1.30.0, read in node_modules/onnxruntime-node/script/install-metadata*.js),
# unreachable here, so the same release's PyPI build was read instead:
# onnxruntime_gpu-1.30.0 wheel, onnxruntime/capi/libonnxruntime_providers_cuda.so,
#   readelf -d: 0x0000000000000001 (NEEDED) Shared library: [libcudart.so.13]
# (also libcublas.so.13, libcublasLt.so.13, libcurand.so.10; cuDNN 9 and cuFFT 12
# are dlopen()ed). test/deploy.test.ts holds this tag to that file's cudaMajor.
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04

# ---- build: compile TypeScript, then keep production dependencies only ------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first so this layer is cached across source edits. The .npmrc
# keeps onnxruntime-node on its bundled CPU binaries here.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts
COPY tsconfig.json buf.yaml buf.gen.yaml ./
COPY proto/ proto/
COPY assembly/ assembly/
COPY src/ src/
# `npm rebuild` runs the install scripts skipped above; `prepare` is what a
# fresh-clone `npm ci` runs (buf generate, asc for the metrics' WebAssembly, tsc).
RUN npm rebuild \
 && npm run prepare \
 && npm prune --omit=dev \
 && npm cache clean --force

# ---- ort-cuda: onnxruntime-node with its CUDA execution provider -----------
FROM build AS ort-cuda
# The environment variable wins over the .npmrc skip; the postinstall fetches
# libonnxruntime_providers_cuda.so (NuGet Microsoft.ML.OnnxRuntime.Gpu.Linux)
# matching the installed onnxruntime-node version. "cuda12" is the name of
# onnxruntime-node's only linux/x64 manifest, not the CUDA major it delivers.
RUN ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so

# ---- cpu: CPU-only runtime ---------------------------------------------------
# The gpu stage repeats this stage's tail: stages share instructions only
# through a common FROM, and the two bases differ. test/deploy.test.ts checks
# that both tails agree (entry points, user, ports, health check, config).
FROM ${NODE_IMAGE} AS cpu
WORKDIR /app
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent medsynth
# Code and models stay root-owned and read-only to the service user.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules/ node_modules/
COPY --from=build /app/dist/ dist/
# Baked-in models; mount a directory over /app/models to replace them.
COPY models/ models/
# Config is MEDSYNTH_* env (flags override it). The health-only plaintext
# port lets probes work when the gRPC port requires TLS or tokens.
ENV NODE_ENV=production \
    MEDSYNTH_DEVICE=cpu \
    MEDSYNTH_MODELS_DIR=/app/models \
    MEDSYNTH_HOST=0.0.0.0 \
    MEDSYNTH_PORT=50051 \
    MEDSYNTH_METRICS_PORT=9464 \
    MEDSYNTH_HEALTH_PORT=8081
USER 10001:10001
EXPOSE 50051 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "dist/src/cli/healthcheck.js"]
# A larger initial V8 heap: the buffers of every 256 KB message (gRPC's, and
# the slices moving between threads) would otherwise set off a full garbage
# collection every ~20 MB; see README, Benchmarks.
ENTRYPOINT ["node", "--initial-heap-size=128", "dist/src/server/main.js"]

# ---- gpu (default): CUDA 13 + cuDNN 9 runtime with Node 20 ------------------
FROM ${CUDA_IMAGE} AS gpu
WORKDIR /app
# Node 20 from the official image (same build as the build stage).
COPY --from=build /usr/local/bin/node /usr/local/bin/node
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent medsynth
COPY --from=ort-cuda /app/package.json ./
COPY --from=ort-cuda /app/node_modules/ node_modules/
COPY --from=ort-cuda /app/dist/ dist/
# A provider that cannot load would otherwise show only at start (or, with
# --device auto, as a silent CPU fallback): fail the build instead. Every
# NEEDED library must resolve except libcuda.so.1, the driver's, which the
# NVIDIA Container Toolkit mounts at run time; cuDNN and cuFFT are dlopen()ed,
# invisible to ldd, so the loader cache must hold them.
RUN set -eu; \
    ort=/app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64; \
    ldd "$ort/libonnxruntime_providers_cuda.so" "$ort/libonnxruntime_providers_shared.so" > /tmp/ldd.txt; \
    if grep 'not found' /tmp/ldd.txt | grep -v 'libcuda\.so\.1 '; then \
      echo "the CUDA provider needs libraries this base image lacks (lines above)" >&2; exit 1; \
    fi; \
    for lib in libcudnn.so.9 libcufft.so.12; do \
      ldconfig -p | grep -q "[[:space:]]$lib " || { echo "$lib (dlopened by the CUDA provider) is missing" >&2; exit 1; }; \
    done; \
    rm /tmp/ldd.txt
COPY models/ models/
# `auto`: CUDA when a GPU is visible, else CPU (the log says which).
ENV NODE_ENV=production \
    MEDSYNTH_DEVICE=auto \
    MEDSYNTH_MODELS_DIR=/app/models \
    MEDSYNTH_HOST=0.0.0.0 \
    MEDSYNTH_PORT=50051 \
    MEDSYNTH_METRICS_PORT=9464 \
    MEDSYNTH_HEALTH_PORT=8081
USER 10001:10001
EXPOSE 50051 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "dist/src/cli/healthcheck.js"]
# A larger initial V8 heap: the buffers of every 256 KB message (gRPC's, and
# the slices moving between threads) would otherwise set off a full garbage
# collection every ~20 MB; see README, Benchmarks.
ENTRYPOINT ["node", "--initial-heap-size=128", "dist/src/server/main.js"]
