"""The FID Inception-v3 and its weights against pytorch-fid's own, given identical weights.

pytorch-fid runs in its own environment (tests/pytorch_fid_env.py), with random weights in
the standard file's state-dict format.
"""
import subprocess
import sys

import jax
import numpy as np
import pytest

from gan_jax import inception, metrics, torch_weights
from gan_jax.errors import UserError

pytestmark = pytest.mark.xdist_group(__name__)  # one process builds the environment and weights


@pytest.fixture(name='weights')
def weights_fixture(inception_weights):
  return inception_weights


def _images(side, count=4, seed=0):
  """Colour images with structure at every scale: smooth gradients plus noise."""
  rng = np.random.default_rng(seed)
  ramp = np.linspace(0, 1, side, dtype=np.float32)
  smooth = ramp[None, :, None, None] * ramp[None, None, :, None] * rng.random((count, 1, 1, 3))
  return np.clip(smooth + 0.3 * rng.random((count, side, side, 3)), 0, 1).astype(np.float32)


@pytest.mark.parametrize('legacy', [False, True])
def test_state_dict_reader_reads_what_torch_wrote(pytorch_fid, tmp_path, legacy):
  path = str(tmp_path / 'weights.pth')
  pytorch_fid.random_weights(path, seed=1, legacy=legacy, num_batches_tracked=True)
  with open(path, 'rb') as f:
    ours = torch_weights.read_state_dict(f.read(), path)
  theirs = pytorch_fid.state_dict_arrays(path)
  assert list(ours) == list(theirs) and len(ours) == 566  # 94 batch-normed convs, fc
  for name, value in theirs.items():
    assert ours[name].dtype == value.dtype, name
    np.testing.assert_array_equal(ours[name], value, err_msg=name)


def test_weights_without_num_batches_tracked_load_the_same(pytorch_fid, weights, tmp_path):
  path = str(tmp_path / 'weights.pth')
  pytorch_fid.random_weights(path, seed=0, num_batches_tracked=False)
  with_counts, without = inception.load(weights), inception.load(path)
  assert with_counts.checksum != without.checksum
  for a, b in zip(jax.tree.leaves(with_counts.variables), jax.tree.leaves(without.variables)):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('side', [32, 299, 400])  # up, as it is, down
def test_features_and_logits_equal_pytorch_fids(pytorch_fid, weights, side):
  images = _images(side)
  pool, logits = pytorch_fid.features(weights, images)
  ours_pool, ours_logits = inception.embed(inception.load(weights), images)
  assert np.median(pool) > 1e-2  # calibrated weights: features of a sane scale
  np.testing.assert_allclose(ours_pool, pool, rtol=1e-4, atol=1e-4 * np.abs(pool).max())
  np.testing.assert_allclose(ours_logits, logits, rtol=1e-4, atol=1e-4 * np.abs(logits).max())


def test_frechet_distance_equals_pytorch_fids(pytorch_fid):
  rng = np.random.default_rng(0)
  a = rng.standard_normal((300, 16)).astype(np.float32)
  b = (0.5 + 1.3 * rng.standard_normal((300, 16)) @ rng.standard_normal((16, 16)) / 4).astype(
      np.float32)
  expected = pytorch_fid.frechet_distance(a, b)
  ours = float(metrics.frechet_distance(*metrics.feature_statistics(a),
                                        *metrics.feature_statistics(b)))
  assert ours == pytest.approx(expected, rel=1e-4)


def test_foreign_state_dicts_are_refused_in_one_line(tmp_path):
  with pytest.raises(UserError, match='is not a PyTorch state dict file'):
    torch_weights.read_state_dict(b'not a pickle', 'junk.pth')
  with pytest.raises(UserError, match=r"not pytorch-fid's Inception-v3 state dict: 471 entries "
                                      r'missing'):
    inception.variables_from_state_dict({'other.weight': np.zeros(3, np.float32)}, 'x.pth')


def test_batches_split_over_devices_give_the_same_features(weights, tmp_path):
  """Two devices, batches of 2 over 3 images (the last padded): as one device, all at once."""
  images = _images(32, count=3)
  np.save(tmp_path / 'images.npy', images)
  script = (
      'import sys, jax, numpy as np\n'
      "jax.config.update('jax_num_cpu_devices', 2)\n"
      'from gan_jax import inception\n'
      'assert len(jax.local_devices()) == 2\n'
      'net = inception.load(sys.argv[1])\n'
      'features, logits = inception.embed(net, np.load(sys.argv[2]), batch_size=2)\n'
      'np.savez(sys.argv[3], features=features, logits=logits)\n')
  subprocess.run([sys.executable, '-c', script, weights, str(tmp_path / 'images.npy'),
                  str(tmp_path / 'out.npz')], check=True)
  with np.load(tmp_path / 'out.npz') as split:
    for ours, theirs in zip(inception.embed(inception.load(weights), images),
                            (split['features'], split['logits'])):
      np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6 * np.abs(ours).max())
