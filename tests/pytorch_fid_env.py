"""pytorch-fid, the FID reference implementation, for tests to check gan_jax's Inception against:
it runs in a virtual environment of its own (torch is no dependency of gan_jax, and never shares
a process with jax), made once per machine and requirement list, and is reached through
tests/pytorch_fid_reference.py, with arrays passed as .npy/.npz files.

Tests take the session fixture `pytorch_fid` (tests/conftest.py), a `PytorchFid`, or skip where
the environment cannot be made (an offline machine without the torch wheel).
"""
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

# Exact versions: the reference must not move under the tests. torch goes in first on its own,
# so that pip takes the CPU wheel where the machine has one (pip's find-links) and needs no
# CUDA libraries. The PyPI torchvision is built for the CUDA torch and would pull it in: it and
# pytorch-fid go in without their dependencies, which are all pinned here.
# (tests/pytorch_fid_reference.py says how torchvision imports beside the CPU torch.)
PIP_INSTALLS = (
    ('torch==2.13.0',),
    ('--no-deps', 'torchvision==0.28.0', 'pytorch-fid==0.3.0'),
    ('numpy==2.4.6', 'scipy==1.17.1', 'pillow==13.0.0'),
)
REFERENCE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'pytorch_fid_reference.py')


class EnvironmentUnavailable(Exception):
  """The environment could not be made; the message is one line saying which command failed."""


def environment_dir():
  """The environment's folder: its name changes with the requirements and the python, so a
  change of either makes a new one instead of reusing a stale one."""
  requirements = repr((PIP_INSTALLS, sys.version_info[:2]))
  name = 'pytorch_fid_' + hashlib.sha256(requirements.encode()).hexdigest()[:12]
  root = (os.environ.get('GAN_JAX_TEST_ENVS')
          or os.path.join(os.path.expanduser('~'), '.cache', 'gan_jax', 'test_envs'))
  return os.path.join(root, name)


def _run_or_raise(command, what):
  """Runs a step of the environment's build; raises EnvironmentUnavailable with its last error
  line, which says what was missing (pip prints it last)."""
  result = subprocess.run(command, capture_output=True, text=True)
  if result.returncode != 0:
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines()
             if line.strip()]
    errors = [line for line in lines if line.startswith('ERROR')]
    last = (errors or lines or [f'exit status {result.returncode}'])[-1]
    raise EnvironmentUnavailable(f'could not make the pytorch-fid environment: `{what}` '
                                 f'failed: {last}')


def _build(env_dir):
  """Makes the environment in env_dir, which must not exist."""
  _run_or_raise([sys.executable, '-m', 'venv', env_dir], 'python -m venv')
  python = os.path.join(env_dir, 'bin', 'python')
  for arguments in PIP_INSTALLS:
    # `python -m pip`, never bin/pip: the venv's scripts name the build folder, which is
    # renamed once complete (the interpreter itself finds its environment wherever it is).
    _run_or_raise([python, '-m', 'pip', 'install', '--no-input', *arguments],
                  'pip install ' + ' '.join(arguments))


def ensure_environment():
  """Returns the environment's folder, making it first where no complete one exists.

  Several xdist workers may ask at once: one builds under an exclusive lock while the others
  wait on it. The build goes into a temporary folder renamed once complete, so an interrupted
  build never leaves a folder that looks ready. A failure is noted beside the lock, so that
  workers that waited for the failed build skip at once instead of trying again.

  Raises:
    EnvironmentUnavailable: the build failed (now, or while this process waited for it).
  """
  env_dir = environment_dir()
  root = os.path.dirname(env_dir)
  os.makedirs(root, exist_ok=True)
  failure_note = env_dir + '.failed'
  waiting_since = time.time()
  with open(env_dir + '.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if os.path.isdir(env_dir):
      return env_dir
    with contextlib.suppress(FileNotFoundError):
      if os.path.getmtime(failure_note) >= waiting_since:
        with open(failure_note) as f:
          raise EnvironmentUnavailable(f.read())
    # Only the lock's holder builds: any build folder left is a killed build's.
    for name in os.listdir(root):
      if name.startswith(os.path.basename(env_dir) + '.building_'):
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    building = tempfile.mkdtemp(prefix=os.path.basename(env_dir) + '.building_', dir=root)
    try:
      os.rmdir(building)  # venv makes it; mkdtemp only chose a name no one else uses
      _build(building)
      os.rename(building, env_dir)
    except EnvironmentUnavailable as error:
      with open(failure_note, 'w') as f:
        f.write(str(error))
      raise
    finally:
      shutil.rmtree(building, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
      os.remove(failure_note)
  return env_dir


class PytorchFid:
  """pytorch-fid's computations, each run by the environment's python in a process of its own."""

  def __init__(self, env_dir):
    self.python = os.path.join(env_dir, 'bin', 'python')

  @classmethod
  def create(cls):
    """A PytorchFid on the environment, made first where needed (see ensure_environment)."""
    return cls(ensure_environment())

  def _run(self, *arguments):
    # PYTHONPATH could put this environment's packages (jax's numpy) before the venv's.
    env = {name: value for name, value in os.environ.items() if name != 'PYTHONPATH'}
    result = subprocess.run([self.python, REFERENCE_SCRIPT, *map(str, arguments)],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
      raise RuntimeError(f'{os.path.basename(REFERENCE_SCRIPT)} {arguments[0]} failed '
                         f'(exit status {result.returncode}):\n{result.stderr}')

  def random_weights(self, path, seed, *, legacy=False, num_batches_tracked=True):
    """Writes a seeded random state dict of pytorch-fid's FID Inception-v3 to path.

    It has exactly the keys that `pytorch_fid.inception.fid_inception_v3()` loads (566, of which
    94 '.num_batches_tracked'), fc.weight [1008, 2048] included. BN scales are U(0.5, 1.5),
    shifts N(0, 0.1), and the BN running statistics are measured on random images, so that
    activations keep a sane scale through the 94 convolutions (relative tolerances mean
    something). The same seed gives the same arrays (on one machine: the statistics come from
    a forward pass).

    Args:
      path: where to write it.
      seed: the integer seed.
      legacy: the pre-1.6 format (`_use_new_zipfile_serialization=False`) instead of zip.
      num_batches_tracked: whether to keep the BN '.num_batches_tracked' entries (int64).
    """
    arguments = ['random-weights', path, '--seed', seed]
    if legacy:
      arguments.append('--legacy')
    if not num_batches_tracked:
      arguments.append('--no-num-batches-tracked')
    self._run(*arguments)

  def features(self, weights_path, images):
    """pytorch-fid's Inception features of images, in float32 on the CPU.

    Args:
      weights_path: a state dict file, e.g. from random_weights.
      images: float32 [N, H, W, 3] in [0, 1], any side (pytorch-fid resizes to 299 itself).

    Returns:
      (pool [N, 2048], logits_unbiased [N, 1008]): `InceptionV3([3], resize_input=True,
      normalize_input=True, use_fid_inception=True)`'s pool3 features, and pool @ fc.weight.T
      (the logits without fc.bias, which the original Inception Score code takes).
    """
    with tempfile.TemporaryDirectory(prefix='pytorch_fid_') as folder:
      images_path = os.path.join(folder, 'images.npy')
      out = os.path.join(folder, 'features.npz')
      np.save(images_path, np.asarray(images, np.float32))
      self._run('features', weights_path, images_path, out)
      with np.load(out) as arrays:
        return arrays['pool'], arrays['logits_unbiased']

  def frechet_distance(self, features1, features2):
    """pytorch-fid's FID of two feature sets [N, D]: `calculate_frechet_distance` on their means
    and `np.cov(rowvar=False)` covariances, as its calculate_activation_statistics has them."""
    with tempfile.TemporaryDirectory(prefix='pytorch_fid_') as folder:
      paths = [os.path.join(folder, name) for name in ('features1.npy', 'features2.npy',
                                                       'distance.npy')]
      np.save(paths[0], np.asarray(features1))
      np.save(paths[1], np.asarray(features2))
      self._run('frechet-distance', *paths)
      return float(np.load(paths[2]))

  def state_dict_arrays(self, weights_path):
    """torch.load's reading of a state dict file as {name: numpy array}, dtypes kept (the
    '.num_batches_tracked' entries are int64): what a torch-free reader must give."""
    with tempfile.TemporaryDirectory(prefix='pytorch_fid_') as folder:
      out = os.path.join(folder, 'state_dict.npz')
      self._run('state-dict', weights_path, out)
      with np.load(out) as arrays:
        return dict(arrays)
