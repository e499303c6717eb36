"""rayk8s: a library-first autoscaler SDK for Ray clusters on Kubernetes."""

__version__ = "0.1.0.dev0"
