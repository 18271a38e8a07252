"""A real local control plane (etcd, kube-apiserver, controllers, scheduler, kwok) for the tests.

Test-side only: nothing here is part of the installed package.
"""
