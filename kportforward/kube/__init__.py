"""Everything that talks to the Kubernetes API, or reads kubeconfig files.

Importing this package loads pyyaml but never the kubernetes package: that is imported lazily, in
worker threads, by the calls that need it (``probe_access``, ``resolve_pods``, ``PodWatcher``).
"""

from kportforward.kube.access import AccessResult, probe_access
from kportforward.kube.classify import KubeApiError
from kportforward.kube.client import preload
from kportforward.kube.kubeconfig import (
    KubeCluster,
    Kubeconfig,
    KubeconfigWatcher,
    KubeContext,
    KubeUser,
    kubeconfig_paths,
    load_kubeconfig,
    load_kubeconfig_for,
    validate_kubeconfig_for_startup,
)
from kportforward.kube.pods import PodChange, PodInfo, PodWatcher, resolve_pods

__all__ = [
    "AccessResult",
    "KubeApiError",
    "KubeCluster",
    "KubeContext",
    "KubeUser",
    "Kubeconfig",
    "KubeconfigWatcher",
    "PodChange",
    "PodInfo",
    "PodWatcher",
    "kubeconfig_paths",
    "load_kubeconfig",
    "load_kubeconfig_for",
    "preload",
    "probe_access",
    "resolve_pods",
    "validate_kubeconfig_for_startup",
]
