"""jax.distributed.initialize's arguments from main's flags and the cluster's environment."""
import pytest

from gan_jax import cluster
from gan_jax.errors import UserError

# What SkyPilot sets on node 1 of a 3-node GPU task (docs: "SkyPilot environment variables").
SKYPILOT = {'SKYPILOT_NODE_IPS': '10.0.0.5\n10.0.0.7\n10.0.0.6\n', 'SKYPILOT_NODE_RANK': '1',
            'SKYPILOT_NUM_NODES': '3', 'SKYPILOT_NUM_GPUS_PER_NODE': '8'}


def test_skypilot_nodes_meet_at_the_first_ip():
  assert cluster.initialize_arguments(SKYPILOT) == {
      'coordinator_address': f'10.0.0.5:{cluster.SKYPILOT_COORDINATOR_PORT}',
      'num_processes': 3, 'process_id': 1}


def test_flags_win_over_skypilot_one_by_one():
  assert cluster.initialize_arguments(SKYPILOT, coordinator_address='head:1234') == {
      'coordinator_address': 'head:1234', 'num_processes': 3, 'process_id': 1}
  assert cluster.initialize_arguments(SKYPILOT, 'head:1234', 2, 0) == {
      'coordinator_address': 'head:1234', 'num_processes': 2, 'process_id': 0}


def test_elsewhere_jax_detects_the_cluster_itself():
  # No SkyPilot (a TPU pod, SLURM, ...): nothing is passed, so jax's own detection runs.
  assert cluster.initialize_arguments({'SLURM_JOB_ID': '7'}) == {}
  assert cluster.initialize_arguments({}, 'head:1234', 2, 1) == {
      'coordinator_address': 'head:1234', 'num_processes': 2, 'process_id': 1}
  # A TPU pod under SkyPilot: jax numbers the hosts as the TPU runtime does.
  assert cluster.initialize_arguments(SKYPILOT, tpu_runtime=True) == {}
  assert cluster.initialize_arguments(SKYPILOT, process_id=2, tpu_runtime=True) == {
      'process_id': 2}


def test_single_node_and_ipv6_and_older_skypilot():
  single = {'SKYPILOT_NODE_IPS': 'fd00::1', 'SKYPILOT_NODE_RANK': '0', 'SKYPILOT_NUM_NODES': '1'}
  assert cluster.initialize_arguments(single) == {
      'coordinator_address': f'[fd00::1]:{cluster.SKYPILOT_COORDINATOR_PORT}',
      'num_processes': 1, 'process_id': 0}
  # SkyPilot versions without SKYPILOT_NUM_NODES: the IPs count the nodes.
  older = {name: value for name, value in SKYPILOT.items() if name != 'SKYPILOT_NUM_NODES'}
  assert cluster.initialize_arguments(older)['num_processes'] == 3


@pytest.mark.parametrize('changes, message', [
    ({'SKYPILOT_NUM_NODES': '2'}, 'SKYPILOT_NUM_NODES=2, SKYPILOT_NODE_RANK=1 and 3 IPs'),
    ({'SKYPILOT_NODE_RANK': '3'}, 'SKYPILOT_NUM_NODES=3, SKYPILOT_NODE_RANK=3 and 3 IPs'),
    ({'SKYPILOT_NODE_RANK': 'one'}, "SKYPILOT_NODE_RANK='one' is not a number"),
])
def test_inconsistent_skypilot_environment_is_named(changes, message):
  with pytest.raises(UserError, match=message):
    cluster.initialize_arguments({**SKYPILOT, **changes})
