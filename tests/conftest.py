"""Shared fixtures: tiny data sets written by the tests themselves, and runs on them; a block on
the network; pytorch-fid, the FID reference, in an environment of its own; an XLA compilation
cache for the session; the grouping of tests that share a fixture under xdist."""
import atexit
import contextlib
import os
import shutil
import socket
import tempfile

import jax
import pytest

import idx_files
import pytorch_fid_env
from gan_jax import feature_net, train
from test_train import load_experiment


# Tests build the same programs many times over (each test makes its own step functions,
# which jit compiles anew): a cache on disk for this process (one per xdist worker) compiles
# each once. Set before anything compiles, when jax decides whether to use it; not passed to
# the subprocesses tests start, which must run as the programs do.
_COMPILATION_CACHE = tempfile.mkdtemp(prefix='gan_jax_tests_xla_cache_')
atexit.register(shutil.rmtree, _COMPILATION_CACHE, ignore_errors=True)
jax.config.update('jax_compilation_cache_dir', _COMPILATION_CACHE)
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items):
  """Under xdist (`--dist loadgroup`, pyproject.toml) the tests of the session's StyleGAN2 run
  go to one worker, which trains it once; modules with an expensive fixture of their own are
  grouped by their `pytestmark` (a test in two groups would form a third)."""
  for item in items:
    if 'stylegan2_workdir' in item.fixturenames:
      item.add_marker(pytest.mark.xdist_group('stylegan2_workdir'))


@contextlib.contextmanager
def compiled_for_speed_of_compiling():
  """XLA without most of its optimisations inside: programs compile several times faster and
  run slower, which pays in tests that compile big steps to run a few of them."""
  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  try:
    yield
  finally:
    jax.config.update('jax_disable_most_optimizations', previous)


@pytest.fixture(scope='module')
def no_network():
  """Fails any test of a module that opens a connection or resolves a name (the machine is
  offline, where tfds's download retries would take minutes), even where tfds catches the
  error. A module asks for it with `pytestmark = pytest.mark.usefixtures('no_network')`."""
  attempts = []

  def refuse(*args, **kwargs):
    attempts.append(args)
    raise RuntimeError(f'network access in a test: {args}')

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(socket.socket, 'connect', refuse)
    patch.setattr(socket, 'getaddrinfo', refuse)
    yield
  assert not attempts, f'tests tried the network: {attempts}'


@pytest.fixture
def fast_compile():
  """`compiled_for_speed_of_compiling` for one test."""
  with compiled_for_speed_of_compiling():
    yield


@pytest.fixture(scope='session')
def pytorch_fid():
  """pytorch-fid, the FID reference, in its own virtual environment (tests/pytorch_fid_env.py),
  made on first use; tests that take it skip where it cannot be made (offline, no torch wheel).
  Session-scoped: pytest keeps a failure too, so each process tries once."""
  try:
    return pytorch_fid_env.PytorchFid.create()
  except pytorch_fid_env.EnvironmentUnavailable as error:
    pytest.skip(str(error))


@pytest.fixture(scope='session')
def inception_weights(pytorch_fid, tmp_path_factory):
  """A random FID Inception-v3 state dict, written by pytorch-fid's code in the standard file's
  format: what tests of the Inception evaluation load (the real file is not downloadable here)."""
  path = str(tmp_path_factory.mktemp('inception') / 'random_inception.pth')
  pytorch_fid.random_weights(path, seed=0)
  return path


@pytest.fixture(scope='session')
def tiny_fashion(tmp_path_factory):
  """(manual_dir, data_dir) of a 20-image 'fashion_mnist' prepared once per session."""
  root = tmp_path_factory.mktemp('tiny_fashion')
  idx_files.write_dataset(str(root / 'idx'))
  return str(root / 'idx'), str(root / 'tfds')


@pytest.fixture(scope='session')
def tiny_weights_dir(tiny_fashion, tmp_path_factory):
  """A feature_net workdir trained for 2 steps (20 images, batch 8) on the tiny IDX files."""
  manual_dir, data_dir = tiny_fashion
  variables, accuracy = feature_net.train('fashion_mnist', epochs=1, batch_size=8,
                                          manual_dir=manual_dir, data_dir=data_dir)
  assert 0 <= accuracy <= 1
  workdir = str(tmp_path_factory.mktemp('feature_net'))
  feature_net.save(variables, workdir, 'fashion_mnist')
  return workdir


@pytest.fixture(scope='session')
def stylegan2_workdir(tiny_fashion, tmp_path_factory):
  """A 2-step StyleGAN2 smoke run (16x16) whose steps compute the lazy regularisers: the
  path length in both, R1 in the second."""
  config = load_experiment(os.path.join(os.path.dirname(__file__), '..', 'experiments',
                                        'stylegan2.py'), 'smoke')
  config.data.manual_dir, config.data.data_dir = tiny_fashion
  config.update(pl_every=1, r1_every=2)
  workdir = str(tmp_path_factory.mktemp('stylegan2_smoke'))
  with compiled_for_speed_of_compiling():  # three steps to compile, two to run
    train.train_and_evaluate(config, workdir)
  return workdir

