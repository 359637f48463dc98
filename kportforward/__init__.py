"""kportforward: keep many ``kubectl port-forward`` tunnels alive and visible.

Importing this package loads neither textual nor kubernetes.
"""

__version__ = "0.1.0"
