# Development S3 server for deploy/compose.yaml: versitygw serving a folder
# (posix backend). Every top-level folder of /data is a bucket; the
# entrypoint creates the buckets named in $BUCKETS before starting.
# Not for production: single root account, no TLS.
#
#   docker build -f deploy/versitygw.Dockerfile deploy/
#
# The posix backend stores object metadata in extended attributes, so /data
# must be on a filesystem with user xattrs (a named Docker volume is).

ARG GO_IMAGE=golang:1.26-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${GO_IMAGE} AS build
# Same version scripts/test.sh installs for the integration tests.
ARG VERSITYGW_VERSION=v1.8.0
RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags="-s -w" \
    github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION}

FROM ${BASE_IMAGE}
COPY --from=build /out/versitygw /usr/local/bin/versitygw
ENV BUCKETS="raw lake" \
    VGW_PORT=:7070 \
    VGW_HEALTH=/health \
    VGW_QUIET=true
VOLUME /data
EXPOSE 7070
# ROOT_ACCESS_KEY / ROOT_SECRET_KEY come from the environment (compose sets them).
ENTRYPOINT ["sh", "-c", "set -e; for b in $BUCKETS; do mkdir -p \"/data/$b\"; done; exec versitygw posix /data"]
