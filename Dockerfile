# Build stage
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin gitclaw

# Runtime stage: small image, non-root user
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/gitclaw --create-home gitclaw
COPY --from=build /src/target/release/gitclaw /usr/local/bin/gitclaw
USER gitclaw
# Listening beyond loopback needs GITCLAW_ADMIN_TOKEN (or GITCLAW_ALLOW_ANONYMOUS=true to run open).
ENV GITCLAW_LISTEN=0.0.0.0:8080 GITCLAW_DATA_DIR=/var/lib/gitclaw
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gitclaw"]
CMD ["serve"]
