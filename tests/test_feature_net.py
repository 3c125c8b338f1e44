"""The feature net: training writes checked weights, and the shipped ones are the right ones."""
import hashlib
import os
import shutil

import jax
import numpy as np
import pytest

from gan_jax import feature_net
from gan_jax.data import idx as idx_dataset
from gan_jax.errors import UserError

REAL_DATA = os.path.join(idx_dataset.SYSTEM_DIR, 'fashion-mnist')


def test_training_writes_weights_and_their_sha256(tiny_weights_dir):
  path = os.path.join(tiny_weights_dir, 'fashion_mnist.msgpack')
  with open(path, 'rb') as f:
    checksum = hashlib.sha256(f.read()).hexdigest()
  with open(path + '.sha256') as f:
    assert f.read() == f'{checksum}  fashion_mnist.msgpack\n'  # `sha256sum -c` reads it
  net = feature_net.load('fashion_mnist', tiny_weights_dir)
  assert net.checksum == checksum
  assert set(net.variables) == {'params', 'batch_stats'}


def test_training_is_deterministic(tiny_fashion, tiny_weights_dir, tmp_path):
  variables, _ = feature_net.train('fashion_mnist', epochs=1, batch_size=8,
                                   manual_dir=tiny_fashion[0], data_dir=tiny_fashion[1])
  _, checksum = feature_net.save(variables, str(tmp_path), 'fashion_mnist')
  assert checksum == feature_net.load('fashion_mnist', tiny_weights_dir).checksum


def test_damaged_weights_are_refused(tiny_weights_dir, tmp_path):
  shutil.copytree(tiny_weights_dir, tmp_path, dirs_exist_ok=True)
  with open(tmp_path / 'fashion_mnist.msgpack', 'r+b') as f:
    f.seek(100)
    f.write(b'\x00\x01\x02')
  with pytest.raises(UserError, match='damaged.*python -m gan_jax.feature_net --dataset '
                                      'fashion_mnist'):
    feature_net.load('fashion_mnist', str(tmp_path))


def test_missing_checksum_file_is_refused(tiny_weights_dir, tmp_path):
  shutil.copy(os.path.join(tiny_weights_dir, 'fashion_mnist.msgpack'), tmp_path)
  with pytest.raises(UserError, match='sha256 is missing'):
    feature_net.load('fashion_mnist', str(tmp_path))


def test_shipped_weights_match_their_checksum():
  name, checksum = feature_net.WEIGHTS['fashion_mnist']
  with open(os.path.join(feature_net.WEIGHTS_DIR, name), 'rb') as f:
    assert hashlib.sha256(f.read()).hexdigest() == checksum
  assert feature_net.load('fashion_mnist').checksum == checksum


def test_shipped_weights_with_a_wrong_checksum_or_missing_are_refused(monkeypatch, tmp_path):
  monkeypatch.setitem(feature_net.WEIGHTS, 'fashion_mnist', ('fashion_mnist.msgpack', '0' * 64))
  with pytest.raises(UserError, match='expected 0000.*Re-create it'):
    feature_net.load('fashion_mnist')
  monkeypatch.setattr(feature_net, 'WEIGHTS_DIR', str(tmp_path))
  with pytest.raises(UserError, match='missing.*copy DIR/fashion_mnist.msgpack'):
    feature_net.load('fashion_mnist')


@pytest.mark.parametrize('dataset', ['mnist', 'ring8'])
def test_data_sets_without_shipped_weights_are_refused(dataset):
  with pytest.raises(UserError, match=f'No feature net ships for {dataset!r}'):
    feature_net.load(dataset)


def test_features_and_logits_shapes_and_jit():
  net = feature_net.load('fashion_mnist')
  images = np.linspace(-1, 1, 3 * 28 * 28, dtype=np.float32).reshape(3, 28, 28, 1)
  features, logits = net.features_and_logits(images)
  assert features.shape == (3, 256) and logits.shape == (3, 10)
  assert np.all(features >= 0)  # after a ReLU
  jitted = jax.jit(lambda x: net.features_and_logits(x))(images)
  np.testing.assert_allclose(jitted[0], features, rtol=1e-5, atol=1e-5)


def test_embed_takes_uint8_or_unit_floats_in_batches():
  net = feature_net.load('fashion_mnist')
  pixels = np.arange(5 * 28 * 28).reshape(5, 28, 28, 1).astype(np.uint8)
  features, logits = feature_net.embed(net, pixels, batch_size=2)
  direct = net.features_and_logits(pixels.astype(np.float32) / 127.5 - 1)
  np.testing.assert_allclose(features, direct[0], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(logits, direct[1], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(feature_net.embed(net, pixels / np.float32(255))[0], features,
                             rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not os.path.isdir(REAL_DATA), reason='needs dataset-fashion-mnist')
def test_shipped_net_classifies_real_test_images():
  accuracy = feature_net.accuracy(feature_net.load('fashion_mnist'), 'fashion_mnist', limit=1000)
  assert accuracy >= 0.90
