# syntax=docker/dockerfile:1
# vane's container images, built from this repository:
#
#   docker build -t vane:dev .                                  # vane (the default, last stage)
#   docker build --target toymodel -t vane-toymodel:dev .       # the toy model of the examples
#
# (podman build takes the same arguments.) Both are static binaries
# (CGO_ENABLED=0) on an empty base image, run as a non-root user.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/vane ./cmd/vane \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/toymodel ./examples/toymodel

# The toy model (examples/toymodel): pass -listen 0.0.0.0:8501 to reach it
# from outside its container, -version v2 for the second version.
FROM scratch AS toymodel
COPY --from=build /out/toymodel /toymodel
USER 65532:65532
EXPOSE 8501
ENTRYPOINT ["/toymodel"]

# vane. Mount a config at /etc/vane/vane.yaml (listen on 0.0.0.0 to be
# reachable from outside the container; see examples/kubernetes).
FROM scratch AS vane
COPY --from=build /out/vane /vane
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/vane"]
CMD ["serve", "-config", "/etc/vane/vane.yaml"]
