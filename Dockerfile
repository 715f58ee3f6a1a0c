# parley's container image: the static binary on an empty base image, run
# as a non-root user, with its database on the /data volume.
#
#   docker build -t parley .
#   docker run -d --name parley -p 8080:8080 -v parley-data:/data parley
#   docker exec -it parley /parley user add yourname
#
# compose.yaml does the same, with a backup. Settings: PARLEY_* variables,
# or a config file mounted at /etc/parley/config.yaml.

# The Go release go.mod names.
ARG GO_IMAGE=golang:1.26-bookworm
# Where the final image takes its files from: the build stage below, unless
# a builder is given an image with the same /out tree (CI builds the final
# stage that way, from a binary built outside).
ARG BIN_IMAGE=build

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# README's static build; the version is stamped when the context has .git.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/parley .
# The rest of the image: CA certificates (for Let's Encrypt) and the data
# directory, which the non-root user must own.
RUN mkdir -p /out/data /out/etc/ssl/certs && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/

FROM ${BIN_IMAGE} AS files

FROM scratch
COPY --from=files /out/etc/ /etc/
COPY --from=files --chown=65532:65532 /out/data/ /data/
COPY --from=files /out/parley /parley
# 65532 is the conventional "nonroot" user of distroless images.
USER 65532:65532
WORKDIR /data
ENV PARLEY_SERVER_ADDR=:8080 PARLEY_DB_PATH=/data/parley.db
VOLUME /data
EXPOSE 8080
# Ready means /readyz answers 200; parley healthcheck reads the same
# PARLEY_* settings as the server, so it finds the port by itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/parley", "healthcheck"]
# SIGTERM stops parley gracefully (close code 1001, messages saved).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/parley"]
CMD ["serve"]
