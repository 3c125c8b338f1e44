"""The pytorch-fid oracle itself (tests/pytorch_fid_env.py): the weights it writes are the ones
asked for, and its features have the scale that makes comparisons with them mean something."""
import numpy as np
import pytest

import pytorch_fid_env

# One worker makes the module's weights once; each call here starts a torch process.
pytestmark = pytest.mark.xdist_group(__name__)

NUM_CONVOLUTIONS = 94  # each with its BN: 6 entries, num_batches_tracked one of them


@pytest.fixture(scope='module')
def weights(pytorch_fid, tmp_path_factory):
  """(path, arrays) of seed 0's random weights, zip format."""
  path = str(tmp_path_factory.mktemp('pytorch_fid_weights') / 'seed0.pth')
  pytorch_fid.random_weights(path, seed=0)
  return path, pytorch_fid.state_dict_arrays(path)


def _assert_same_arrays(arrays, expected):
  assert arrays.keys() == expected.keys()
  for name, array in arrays.items():
    assert array.dtype == expected[name].dtype, name
    np.testing.assert_array_equal(array, expected[name], err_msg=name)


def test_random_weights_have_fid_inceptions_keys_shapes_and_dtypes(weights):
  _, arrays = weights
  assert len(arrays) == 6 * NUM_CONVOLUTIONS + 2
  tracked = [name for name in arrays if name.endswith('.num_batches_tracked')]
  assert len(tracked) == NUM_CONVOLUTIONS
  assert all(arrays[name].dtype == np.int64 and arrays[name].shape == () for name in tracked)
  assert arrays['fc.weight'].shape == (1008, 2048) and arrays['fc.bias'].shape == (1008,)
  assert arrays['Conv2d_1a_3x3.conv.weight'].shape == (32, 3, 3, 3)
  assert arrays['Mixed_7c.branch_pool.bn.running_var'].shape == (192,)
  assert all(arrays[name].dtype == np.float32 for name in arrays if name not in tracked)
  gammas = np.concatenate([arrays[name] for name in arrays if name.endswith('.bn.weight')])
  assert 0.5 <= gammas.min() and gammas.max() <= 1.5 and gammas.std() > 0.2  # not all 1


def test_random_weights_are_seeded(pytorch_fid, weights, tmp_path):
  path, arrays = weights
  pytorch_fid.random_weights(tmp_path / 'again.pth', seed=0)
  _assert_same_arrays(pytorch_fid.state_dict_arrays(tmp_path / 'again.pth'), arrays)
  pytorch_fid.random_weights(tmp_path / 'other.pth', seed=1)
  other = pytorch_fid.state_dict_arrays(tmp_path / 'other.pth')
  for name in ('Conv2d_1a_3x3.conv.weight', 'Mixed_6e.branch7x7_2.bn.bias',
               'Mixed_7c.branch3x3dbl_3b.bn.running_mean', 'fc.weight'):
    assert not np.array_equal(other[name], arrays[name]), name


def test_legacy_format_and_dropped_num_batches_tracked_hold_the_same_arrays(
    pytorch_fid, weights, tmp_path):
  _, arrays = weights
  pytorch_fid.random_weights(tmp_path / 'legacy.pth', seed=0, legacy=True)
  with open(tmp_path / 'legacy.pth', 'rb') as f:
    assert not f.read(4).startswith(b'PK')  # not a zip: the pickle protocol's magic number
  _assert_same_arrays(pytorch_fid.state_dict_arrays(tmp_path / 'legacy.pth'), arrays)
  pytorch_fid.random_weights(tmp_path / 'untracked.pth', seed=0, num_batches_tracked=False)
  untracked = pytorch_fid.state_dict_arrays(tmp_path / 'untracked.pth')
  assert len(untracked) == 5 * NUM_CONVOLUTIONS + 2
  _assert_same_arrays(untracked, {name: array for name, array in arrays.items()
                                  if not name.endswith('.num_batches_tracked')})


def test_features_have_a_sane_scale(pytorch_fid, weights):
  path, arrays = weights
  images = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
  pool, logits_unbiased = pytorch_fid.features(path, images)
  assert pool.shape == (4, 2048) and logits_unbiased.shape == (4, 1008)
  assert pool.dtype == logits_unbiased.dtype == np.float32
  assert np.isfinite(pool).all() and np.isfinite(logits_unbiased).all()
  assert pool.min() >= 0  # an average of ReLU outputs
  # The BN calibration worked: no vanishing or exploding through 94 convolutions.
  # (Calibrated on white noise alone, these small smooth images gave a median of 45 and
  # features 30 times less distinct.)
  assert 1e-2 < np.median(pool) < 1e1
  assert np.std(pool, axis=0).mean() > 0.05 * np.mean(pool)  # the images are told apart
  np.testing.assert_allclose(logits_unbiased, pool @ arrays['fc.weight'].T, rtol=1e-4,
                             atol=1e-5)


def test_frechet_distance_is_pytorch_fids(pytorch_fid):
  rng = np.random.default_rng(0)
  features = np.maximum(rng.standard_normal((64, 16)) + 0.5, 0)
  assert pytorch_fid.frechet_distance(features, features) == pytest.approx(0, abs=1e-6)
  # Same covariance, means 1 apart in each of 16 dimensions: the distance is ||mu1 - mu2||^2.
  assert pytorch_fid.frechet_distance(features, features + 1) == pytest.approx(16, rel=1e-6)


def test_a_failed_build_names_its_failing_command_and_leaves_no_environment(monkeypatch, tmp_path):
  monkeypatch.setenv('GAN_JAX_TEST_ENVS', str(tmp_path))
  monkeypatch.setattr(pytorch_fid_env, 'PIP_INSTALLS',
                      (('--no-index', 'no-such-package-gan-jax==1.0'),))
  with pytest.raises(pytorch_fid_env.EnvironmentUnavailable,
                     match=r'`pip install --no-index no-such-package-gan-jax==1.0` failed: '
                           r'ERROR: No matching distribution found'):
    pytorch_fid_env.ensure_environment()
  assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(('.lock', '.failed'))] == []
