"""The recipe tier uses the integration tier's Slurm fixtures (a real local cluster)."""
from tests.integration.conftest import slurm_cluster, two_node_cluster  # noqa: F401
