"""Helpers for testing code that talks to Kubernetes, against the real thing.

``ControlPlane`` starts etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and KWOK on 127.0.0.1 (see ``scripts/control-plane``).
"""

from rayk8s.testing.control_plane import ControlPlane, ControlPlaneError

__all__ = ["ControlPlane", "ControlPlaneError"]
