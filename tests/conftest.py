"""Shared fixtures: tiny data sets written by the tests themselves."""
import pytest

import idx_files
from gan_jax import feature_net


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
