# syntax=docker/dockerfile:1
# bitparity: the orchestrator (compare, merge, report, bench, health), as the nightly
# CronJob runs it. bitnet-synth is included so that a cluster can make a small test
# model without a download.
# Build from the repository root:
#   docker build -f deploy/docker/bitparity.Dockerfile -t bitparity/bitparity .
# Run:
#   docker run --rm -v "$PWD/reports:/reports" bitparity/bitparity compare \
#     --a dns:///native:50051 --b dns:///cpp:50051 --json /reports/run.json --html /reports/run.html
# Only Debian 12 packages are downloaded.

FROM debian:bookworm-slim AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN rm -rf build && scripts/setup.sh build && strip build/bin/bitparity build/bin/bitnet-synth

FROM debian:bookworm-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libfmt9 libssl3 libc-ares2 libre2-9 zlib1g \
      ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 bitparity \
    && useradd --system --uid 10001 --gid bitparity --home-dir /nonexistent --shell /usr/sbin/nologin bitparity \
    && mkdir -p /reports && chown bitparity:bitparity /reports
COPY --from=build /src/build/bin/bitparity /src/build/bin/bitnet-synth /usr/local/bin/
USER 10001:10001
WORKDIR /reports
# A one-shot tool, not a service: the health check proves the binary and its
# libraries load (bitparity --help exits 0).
HEALTHCHECK --interval=60s --timeout=5s --retries=1 CMD ["bitparity", "--help"]
ENTRYPOINT ["bitparity"]
CMD ["--help"]
