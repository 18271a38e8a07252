"""The one place the control plane's versions are pinned.

Kubernetes 1.36 is built against etcd's 3.6 client, so the server is the newest 3.6 patch.
kwok 0.8 is built against client-go 0.36, the same minor as the control plane.
"""

KUBERNETES = "v1.36.3"
ETCD = "v3.6.16"
KWOK = "v0.8.0"

# The same release of Kubernetes' staging modules (k8s.io/api, ...), published as v0.<minor>.<patch>.
STAGING = "v0." + KUBERNETES.removeprefix("v1.")
