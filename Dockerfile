# The operator image: `libinject run` (and `libinject csi`, the node plugin) on a pinned Python. Two stages: the builder
# installs the locked runtime dependencies and the package into a venv; the final stage copies only
# that venv. Build from the repository root: docker build -t localhost:5000/libinject/operator:0.1.0 .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# crane, which the CSI node plugin (`libinject csi`) pulls library images with.
FROM golang:1.26-bookworm AS crane
RUN CGO_ENABLED=0 GOBIN=/out go install github.com/google/go-containerregistry/cmd/crane@v0.22.1

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/libinject
# Dependencies first, in their own layer: it is rebuilt only when the lock changes. Wheels only
# (the slim image has no compiler), exactly the locked set (--no-deps), and `pip check` fails the
# build if the lock ever misses a dependency.
COPY requirements.lock /tmp/requirements.lock
RUN /opt/libinject/bin/pip install --no-deps --only-binary=:all: -r /tmp/requirements.lock \
    && /opt/libinject/bin/pip check
# The package itself; its dependencies are the ones just installed.
COPY pyproject.toml /src/pyproject.toml
COPY operator /src/operator
# The CSI stubs are generated, never committed: libinject.csi.codegen takes csi.proto from the
# spec's Go module (go mod download) and runs grpcio-tools' protoc, both only in this stage.
COPY --from=golang:1.26-bookworm /usr/local/go /usr/local/go
RUN python -m venv /tmp/codegen \
    && /tmp/codegen/bin/pip install --only-binary=:all: grpcio-tools==1.85.1 \
    && GO=/usr/local/go/bin/go PYTHONPATH=/src/operator /tmp/codegen/bin/python -m libinject.csi.codegen
RUN /opt/libinject/bin/pip install --no-deps /src \
    && /opt/libinject/bin/pip check \
    && /opt/libinject/bin/libinject --help > /dev/null

FROM ${PYTHON_IMAGE}
# Same base image, so the venv's interpreter link (/usr/local/bin/python3.11) resolves here too.
COPY --from=builder /opt/libinject /opt/libinject
COPY --from=crane /out/crane /usr/local/bin/crane
# The root filesystem is read-only in the cluster: bytecode was compiled at install time, none is
# written at run time. Logs go out unbuffered.
ENV PATH=/opt/libinject/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Numeric, so the kubelet can check runAsNonRoot without reading /etc/passwd.
USER 65532:65532
# The webhook (HTTPS) and the probes and metrics (HTTP); the config file sets both.
EXPOSE 9443 8080
ENTRYPOINT ["libinject"]
CMD ["run"]
