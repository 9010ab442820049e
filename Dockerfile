# syntax=docker/dockerfile:1
#
# goproxy in a container: a static-enough binary on distroless, run as a
# non-root user, with the cache in a volume.
#
#   docker build --build-arg GIT_REV="$(git rev-parse --short HEAD)" -t goproxy .
#   docker run -d -p 12345:12345 -v goproxy-cache:/app/cache goproxy
#
# The build context has no .git directory (see .dockerignore), so the revision
# that `goproxy --version` prints comes from the GIT_REV build argument.

# Build and runtime stages share one Debian release (bookworm = Debian 12), so
# the glibc the binary is linked against is the one it runs with.
FROM rust:1.95-slim-bookworm AS build
ARG GIT_REV=unknown
ENV GOPROXY_GIT_REV=${GIT_REV}
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
# The registry and target caches survive between builds; the binary is copied
# out of the cached target directory so that it lands in the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin goproxy \
    && cp target/release/goproxy /usr/local/bin/goproxy \
    && mkdir -p /app/cache

# cc: glibc, libgcc and CA certificates, no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/goproxy /usr/local/bin/goproxy
# An empty cache directory owned by the runtime user: a new named volume
# mounted here takes over its owner, so the proxy can write to it.
COPY --from=build --chown=65532:65532 /app/cache /app/cache
WORKDIR /app
ENV CACHE_DIR=/app/cache
USER 65532:65532
VOLUME /app/cache
EXPOSE 12345
# The binary checks itself (GET /health on the port its settings name, so a
# changed PORT is followed); Docker reads exit 1 as unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/goproxy", "healthcheck", "--timeout", "3s"]
ENTRYPOINT ["/usr/local/bin/goproxy"]
CMD ["serve"]
