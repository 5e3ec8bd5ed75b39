# One image with the binaries: `producer` (the web app), `worker` and `warehouse-stub`.
# Builds with the classic builder and with BuildKit (no BuildKit-only syntax).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# No debug info in the shipped binaries: smaller image, faster build.
ENV CARGO_PROFILE_RELEASE_DEBUG=false

# Dependencies first, in a layer of their own: only the manifests and empty crates, so
# editing the code does not rebuild them. The tests crate is left out of the workspace
# here (it is not shipped), so changes to the tests never invalidate this layer; cargo
# then only prunes the lock file of test-only packages, every version stays as locked.
COPY Cargo.toml Cargo.lock ./
COPY shared/jobs/Cargo.toml shared/jobs/
COPY shared/dbkit/Cargo.toml shared/dbkit/
COPY shared/observability/Cargo.toml shared/observability/
COPY shared/photos/Cargo.toml shared/photos/
COPY shared/orders/Cargo.toml shared/orders/
COPY shared/mail/Cargo.toml shared/mail/
COPY shared/testkit/Cargo.toml shared/testkit/
COPY producer/Cargo.toml producer/
COPY worker/Cargo.toml worker/
RUN sed -i 's/, "tests"\]/]/' Cargo.toml \
 && for crate in shared/jobs shared/dbkit shared/observability shared/photos shared/orders shared/mail shared/testkit producer worker; do \
      mkdir -p $crate/src && touch $crate/src/lib.rs; done \
 && echo 'fn main() {}' > producer/src/main.rs \
 && echo 'fn main() {}' > worker/src/main.rs \
 && cargo build --release -p producer -p worker

# Then the code. Cargo compares modification times, so make ours newer than the stubs.
COPY shared shared
COPY producer producer
COPY worker worker
RUN find shared producer worker -name '*.rs' -exec touch {} + \
 && cargo build --release -p producer -p worker

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --create-home app \
 && mkdir -p /data/storage /data/outbox /definitions \
 && chown -R app:app /data /definitions
COPY --from=build /src/target/release/producer /src/target/release/worker \
     /src/target/release/warehouse-stub /usr/local/bin/
USER app
WORKDIR /data
ENV STORAGE_DIR=/data/storage OUTBOX_DIR=/data/outbox RUST_LOG=info
EXPOSE 8080
CMD ["producer", "serve"]
