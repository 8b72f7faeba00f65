# syntax=docker/dockerfile:1
# bitnet-native-server: the bitnet.v1.Engine gRPC service on the bitparity engine.
# Build from the repository root:
#   docker build -f deploy/docker/native-server.Dockerfile -t bitparity/native-server .
# Run (the model is mounted, never baked in):
#   docker run -p 50051:50051 -v /models:/models:ro bitparity/native-server --model /models/model.gguf
# Only Debian 12 packages are downloaded (by scripts/setup.sh in the build stage and
# apt-get in the runtime stage).

FROM debian:bookworm-slim AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# setup.sh installs the build packages (Debian 12) and builds build/bin with Ninja, Release.
RUN rm -rf build && scripts/setup.sh build && strip build/bin/bitnet-native-server build/bin/bitparity

FROM debian:bookworm-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# The shared libraries the binaries link (ldd of build/bin), from Debian 12 runtime packages.
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libfmt9 libssl3 libc-ares2 libre2-9 \
      libopenblas0-pthread libgfortran5 libquadmath0 libpcre2-8-0 zlib1g \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libcivetweb1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 bitparity \
    && useradd --system --uid 10001 --gid bitparity --home-dir /nonexistent --shell /usr/sbin/nologin bitparity
COPY --from=build /src/build/bin/bitnet-native-server /src/build/bin/bitparity /usr/local/bin/
# OpenBLAS 0.3.21 does not recognise recent Xeons (see scripts/setup.sh).
ENV OPENBLAS_CORETYPE=SkylakeX
USER 10001:10001
EXPOSE 50051 9464
# The standard grpc.health.v1 service: SERVING once the model is loaded, NOT_SERVING while draining.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["bitparity", "health", "--quiet", "--timeout", "4", "127.0.0.1:50051"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["bitnet-native-server", "--listen", "0.0.0.0:50051"]
CMD ["--model", "/models/model.gguf"]
