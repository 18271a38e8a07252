# The operator image, for users with a Docker engine: `libinject run` (and `libinject csi`, the
# node plugin) on Debian bookworm's python3.11. `make image` builds the same image without one
# (tests/cluster/operatorimage.py, after libinject/images/operatorimage.py), for linux/amd64 and
# linux/arm64, reproducibly; tests/images/test_dockerfile.py keeps this file to the same Python,
# wheels, paths, user and entrypoint. Build from the repository root:
#   docker build -t localhost:5000/libinject/operator:0.1.0 .
ARG DEBIAN_IMAGE=debian:bookworm-slim

# crane, which the CSI node plugin (`libinject csi`) pulls library images with.
FROM golang:1.26-bookworm AS crane
RUN CGO_ENABLED=0 GOBIN=/out go install github.com/google/go-containerregistry/cmd/crane@v0.22.1

FROM ${DEBIAN_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN apt-get update \
    && apt-get install --yes --no-install-recommends python3.11 python3.11-venv python3-pip
# Exactly the locked set (--no-deps), wheels only, into the directory Debian's python reads for
# local installs; `pip check` fails the build if the lock ever misses a dependency.
COPY requirements.lock /tmp/requirements.lock
RUN python3.11 -m pip install --break-system-packages --no-compile --no-deps \
        --only-binary=:all: --target /usr/local/lib/python3.11/dist-packages \
        -r /tmp/requirements.lock
# The CSI stubs are generated, never committed: libinject.csi.codegen takes csi.proto from the
# spec's Go module (go mod download) and runs grpcio-tools' protoc, both only in this stage.
COPY pyproject.toml /src/pyproject.toml
COPY operator /src/operator
COPY --from=golang:1.26-bookworm /usr/local/go /usr/local/go
RUN python3.11 -m venv /tmp/codegen \
    && /tmp/codegen/bin/pip install --only-binary=:all: grpcio-tools==1.85.1 \
    && GO=/usr/local/go/bin/go PYTHONPATH=/src/operator /tmp/codegen/bin/python -m libinject.csi.codegen
RUN python3.11 -m pip install --break-system-packages --no-compile --no-deps \
        --target /usr/local/lib/python3.11/dist-packages /src \
    && rm -rf /usr/local/lib/python3.11/dist-packages/bin \
    && python3.11 -m pip check \
    && python3.11 -P -m libinject --help > /dev/null
# The root filesystem is read-only in the cluster: bytecode is compiled here, and checked by
# nothing at run time (unchecked-hash), as `make image` compiles it.
RUN PYTHONHASHSEED=0 python3.11 -m compileall -q -q -j 0 --invalidation-mode unchecked-hash \
        /usr/local/lib/python3.11/dist-packages || true

FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install --yes --no-install-recommends python3.11-minimal libpython3.11-stdlib libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 nonroot \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /home/nonroot \
        --shell /sbin/nologin nonroot
COPY --from=builder /usr/local/lib/python3.11/dist-packages /usr/local/lib/python3.11/dist-packages
COPY --from=crane /out/crane /usr/local/bin/crane
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SSL_CERT_FILE=/usr/local/lib/python3.11/dist-packages/certifi/cacert.pem
# Numeric, so the kubelet can check runAsNonRoot without reading /etc/passwd.
USER 65532:65532
WORKDIR /
# The probes and metrics (HTTP); the webhook (HTTPS). The config file sets both.
EXPOSE 8080/tcp 9443/tcp
ENTRYPOINT ["/usr/bin/python3.11", "-P", "-m", "libinject"]
CMD ["run"]
