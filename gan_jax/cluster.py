"""Which process of which cluster this is: the arguments of `jax.distributed.initialize`.

jax finds Cloud TPU pods and slices, SLURM, Open MPI and Kubernetes jobs by itself; a
SkyPilot multi-node task it does not, but SkyPilot tells every node its rank and all the
nodes' IPs in environment variables (docs.skypilot.co, "SkyPilot environment variables").
"""
import importlib.util
from typing import Any, Mapping

from gan_jax.errors import UserError

# Any port works that no other program on the head node uses, as long as every node picks
# the same one (SkyPilot's Ray takes 6379, 8265 and 10001); this one jax uses on Cloud TPUs.
SKYPILOT_COORDINATOR_PORT = 8482


def _skypilot_int(environ: Mapping[str, str], name: str) -> int:
  try:
    return int(environ[name])
  except (KeyError, ValueError) as e:
    raise UserError(f'SKYPILOT_NODE_IPS is set, but {name}={environ.get(name)!r} is not a '
                    'number: is this a SkyPilot task?') from e


def skypilot_arguments(environ: Mapping[str, str]) -> dict[str, Any]:
  """`jax.distributed.initialize`'s arguments in a SkyPilot task, or {} outside one.

  SKYPILOT_NODE_IPS holds one IP a line, in rank order: the first is the head node, which
  runs the coordinator. SKYPILOT_NUM_NODES counts the nodes (SkyPilot versions before it
  existed: the IPs), SKYPILOT_NODE_RANK is this node's.
  """
  if 'SKYPILOT_NODE_IPS' not in environ:
    return {}
  ips = [line.strip() for line in environ['SKYPILOT_NODE_IPS'].splitlines() if line.strip()]
  num_nodes = (_skypilot_int(environ, 'SKYPILOT_NUM_NODES') if 'SKYPILOT_NUM_NODES' in environ
               else len(ips))
  rank = _skypilot_int(environ, 'SKYPILOT_NODE_RANK')
  if len(ips) != num_nodes or not 0 <= rank < num_nodes:
    raise UserError(f'SkyPilot\'s environment does not add up: SKYPILOT_NUM_NODES={num_nodes}, '
                    f'SKYPILOT_NODE_RANK={rank} and {len(ips)} IPs in SKYPILOT_NODE_IPS.')
  head = f'[{ips[0]}]' if ':' in ips[0] else ips[0]  # an IPv6 address needs brackets
  return {'coordinator_address': f'{head}:{SKYPILOT_COORDINATOR_PORT}',
          'num_processes': num_nodes, 'process_id': rank}


def has_tpu_runtime() -> bool:
  """Whether jax's TPU runtime (libtpu, from `jax[tpu]`) is installed: a Cloud TPU VM."""
  return importlib.util.find_spec('libtpu') is not None


def initialize_arguments(environ: Mapping[str, str], coordinator_address: str | None = None,
                         num_processes: int | None = None, process_id: int | None = None,
                         tpu_runtime: bool = False) -> dict[str, Any]:
  """The keyword arguments of `jax.distributed.initialize` for this process.

  Each argument comes from, in order: the value given (gan_jax.main's flags); SkyPilot's
  environment, unless on TPUs; jax's own detection, by leaving it out. On a TPU pod under
  SkyPilot, jax's detection wins over SkyPilot's ranks: it numbers the hosts as the TPU
  runtime does, which SkyPilot's ranks need not.

  Args:
    environ: the environment variables, `os.environ`.
    coordinator_address: host:port of process 0, or None.
    num_processes: how many processes, or None.
    process_id: this process's index, or None.
    tpu_runtime: whether this is a Cloud TPU VM, `has_tpu_runtime()`.
  Returns:
    A dict to pass as `jax.distributed.initialize(**arguments)`.
  """
  given = {'coordinator_address': coordinator_address, 'num_processes': num_processes,
           'process_id': process_id}
  detected = {} if tpu_runtime else skypilot_arguments(environ)
  return {**detected, **{name: value for name, value in given.items() if value is not None}}
