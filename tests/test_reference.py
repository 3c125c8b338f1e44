"""reference: real images' features computed once, cached under what they depend on, read in
chunks; published statistics files checked."""
import numpy as np
import pytest

from gan_jax import evaluate, reference
from gan_jax.errors import UserError


class CountingEmbed:
  """A stand-in feature space: each image's mean and max pixel, counting the images it sees."""

  def __init__(self):
    self.images_seen = 0

  def __call__(self, images, unused_what):
    self.images_seen += len(images)
    flat = images.reshape(len(images), -1).astype(np.float32)
    features = np.stack([flat.mean(1), flat.max(1), flat.std(1)], axis=1)
    return features, features


def _config(tiny_fashion, side=28):
  return evaluate.samples_config('fashion_mnist', np.zeros((1, side, side, 1)), *tiny_fashion)


def test_a_split_is_embedded_once_per_weights_and_resizing(tiny_fashion, tmp_path):
  embed, cache = CountingEmbed(), str(tmp_path)
  config = _config(tiny_fashion)
  first = reference.of_split(embed, ('weights', 'legacy'), config, 'train', 0, cache)
  assert embed.images_seen == 20 and len(first.features) == 20  # 0: the whole split
  again = reference.of_split(embed, ('weights', 'legacy'), config, 'train', 0, cache)
  assert embed.images_seen == 20  # from the cache
  np.testing.assert_array_equal(again.features, first.features)
  np.testing.assert_array_equal(again.labels, first.labels)
  reference.of_split(embed, ('weights', 'clean'), config, 'train', 0, cache)
  assert embed.images_seen == 40  # another resizing, other features
  some = reference.of_split(embed, ('weights', 'legacy'), config, 'train', 12, cache)
  assert embed.images_seen == 52 and len(some.features) == 12  # the first 12
  np.testing.assert_array_equal(some.features, first.features[:12])


def test_chunks_and_image_size_change_what_is_read_as_expected(tiny_fashion, tmp_path):
  config = _config(tiny_fashion)
  whole = reference.of_split(CountingEmbed(), ('w',), config, 'train', 0, str(tmp_path / 'a'))
  chunked = reference.of_split(CountingEmbed(), ('w',), config, 'train', 0, str(tmp_path / 'b'),
                               chunk_size=7)
  np.testing.assert_array_equal(chunked.features, whole.features)
  np.testing.assert_allclose(whole.mu, whole.features.mean(0), rtol=1e-5)
  # Fitted as training fits them: 28x28 images grown to the samples' 32x32.
  grown = reference.of_split(CountingEmbed(), ('w',), _config(tiny_fashion, 32), 'train', 0,
                             str(tmp_path / 'c'))
  assert not np.allclose(grown.features, whole.features)


def test_statistics_files_are_checked(tmp_path):
  np.savez(tmp_path / 'good.npz', mu=np.zeros(3), sigma=np.eye(3))
  statistics = reference.of_statistics(str(tmp_path / 'good.npz'))
  assert statistics.features is None and statistics.sigma.shape == (3, 3)
  np.savez(tmp_path / 'bad.npz', mu=np.zeros(3), sigma=np.eye(4))
  with pytest.raises(UserError, match=r'holds mu \[3\] and sigma \[4, 4\]; expected'):
    reference.of_statistics(str(tmp_path / 'bad.npz'))
  np.savez(tmp_path / 'other.npz', mean=np.zeros(3))
  with pytest.raises(UserError, match='is not a statistics file with arrays mu'):
    reference.of_statistics(str(tmp_path / 'other.npz'))
