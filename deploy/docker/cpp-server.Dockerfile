# syntax=docker/dockerfile:1
# bitnet-cpp-server: the bitnet.v1.Engine service on YOUR bitnet.cpp build
# (cpp_ref_adapter/README.md). Nothing here fetches or builds bitnet.cpp: you supply
# a built checkout (built with -DBUILD_SHARED_LIBS=ON as that README says), either
#   - as an image that holds it at BITNET_CPP_DIR (default /opt/BitNet):
#       docker build -f deploy/docker/cpp-server.Dockerfile \
#         --build-arg BITNET_CPP_IMAGE=registry.example/bitnet-cpp:2024-11 -t bitparity/cpp-server .
#   - or as a local directory, a named build context that replaces that image:
#       docker build -f deploy/docker/cpp-server.Dockerfile \
#         --build-context bitnet-cpp=/path/to/BitNet --build-arg BITNET_CPP_DIR=/ -t bitparity/cpp-server .
# The build context itself is this repository's root.

ARG BITNET_CPP_IMAGE=bitnet-cpp
ARG BITNET_CPP_DIR=/opt/BitNet

# The user's bitnet.cpp build (an image, or a --build-context of the same name).
FROM ${BITNET_CPP_IMAGE} AS bitnet-cpp

FROM debian:bookworm-slim AS build
ARG BITNET_CPP_DIR
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=bitnet-cpp ${BITNET_CPP_DIR} /opt/BitNet
WORKDIR /src
COPY . .
# CMake finds libllama/libggml and llama.h in BITNET_CPP_DIR (cpp_ref_adapter/bitnet_cpp.cmake).
RUN rm -rf build && BITPARITY_CMAKE_ARGS="-DBITNET_CPP_DIR=/opt/BitNet" scripts/setup.sh build \
    && test -x build/bin/bitnet-cpp-server && test -x build/bin/bitnet-cpp-worker \
    && strip build/bin/bitnet-cpp-server build/bin/bitnet-cpp-worker build/bin/bitparity \
    && mkdir -p /out/lib \
    && find /opt/BitNet -name 'lib*.so*' \( -name 'libllama*' -o -name 'libggml*' \) -exec cp -P {} /out/lib/ \;

FROM debian:bookworm-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libfmt9 libssl3 libc-ares2 libre2-9 \
      libpcre2-8-0 zlib1g libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libcivetweb1 libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 bitparity \
    && useradd --system --uid 10001 --gid bitparity --home-dir /nonexistent --shell /usr/sbin/nologin bitparity
# bitnet-cpp-server starts bitnet-cpp-worker from beside itself.
COPY --from=build /src/build/bin/bitnet-cpp-server /src/build/bin/bitnet-cpp-worker /src/build/bin/bitparity /usr/local/bin/
COPY --from=build /out/lib/ /usr/local/lib/bitnet-cpp/
ENV LD_LIBRARY_PATH=/usr/local/lib/bitnet-cpp
USER 10001:10001
EXPOSE 50051 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
  CMD ["bitparity", "health", "--quiet", "--timeout", "4", "127.0.0.1:50051"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["bitnet-cpp-server", "--listen", "0.0.0.0:50051"]
CMD ["--model", "/models/model.gguf", "--workers", "1"]
