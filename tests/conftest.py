"""Shared fixtures: tiny data sets written by the tests themselves."""
import pytest

import idx_files


@pytest.fixture(scope='session')
def tiny_fashion(tmp_path_factory):
  """(manual_dir, data_dir) of a 20-image 'fashion_mnist' prepared once per session."""
  root = tmp_path_factory.mktemp('tiny_fashion')
  idx_files.write_dataset(str(root / 'idx'))
  return str(root / 'idx'), str(root / 'tfds')
