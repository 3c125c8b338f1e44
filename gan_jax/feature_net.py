r"""A small CNN classifier per image data set: the feature space of the sample-quality metrics.

Its penultimate layer (256 units) is the feature space of FID, KID and precision/recall
in `gan_jax.evaluate`, and its class logits give the Inception Score analogue and the
classes covered. ImageNet's Inception-v3 knows nothing of 28x28 grey garments or digits;
a classifier trained on the data set itself is the usual stand-in for such data.

python -m gan_jax.feature_net --dataset fashion_mnist --workdir runs/feature_net

trains one (seeded, deterministic on CPU), prints its test accuracy and writes
WORKDIR/<dataset>.msgpack with its sha256. The shipped
gan_jax/feature_weights/fashion_mnist.msgpack (2.5 MB) is the output of exactly that
command with its defaults: --seed=0, 8 epochs of batch 128, Adam 1e-3 with cosine
decay, 8.5 minutes on 2 shared CPU cores; test accuracy 92.63%. A second run wrote the same
bytes. Metrics are comparable only under the same weights, so `load` checks their sha256
against `WEIGHTS`.
"""
import dataclasses
import functools
import hashlib
import os
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import cli, paths
from gan_jax.data import idx
from gan_jax.errors import UserError

# Data set -> (file in WEIGHTS_DIR, its sha256), as the training command prints them.
WEIGHTS = {
    'fashion_mnist': ('fashion_mnist.msgpack',
                      'b4107941b0691da651d2ec62208e659351b6616dd83039df822b4a0188f23d46'),
}
WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), 'feature_weights')
NUM_CLASSES = 10  # of every IDX data set
INPUT_SIDE = 28  # of every IDX data set: other sizes are resized to it


class Classifier(nn.Module):
  """Four 3x3 convolutions with batch norm, a 256-unit layer, then the logits.

  28x28x1 -> 28x28x32 -> 14x14x32 -> 7x7x64 -> 4x4x128 -> 256 features -> logits. All
  but the first convolution have stride 2: pooling layers instead made training on a
  2-core CPU 1.5-3x slower. Dropout acts only on the way to the logits, so features are
  the same in training and evaluation mode.

  Attributes:
    num_classes: classes of the data set.
    convolutions: (channels, stride) of each convolution.
    feature_dim: units of the penultimate layer, the feature space.
  """
  num_classes: int = NUM_CLASSES
  convolutions: tuple[tuple[int, int], ...] = ((32, 1), (32, 2), (64, 2), (128, 2))
  feature_dim: int = 256

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
    """Maps images [N, 28, 28, 1] in [-1, 1] to (features [N, 256], logits [N, classes])."""
    x = images
    for channels, stride in self.convolutions:
      x = nn.Conv(channels, (3, 3), strides=stride, use_bias=False)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
    features = nn.relu(nn.Dense(self.feature_dim)(x.reshape(x.shape[0], -1)))
    logits = nn.Dense(self.num_classes)(nn.Dropout(0.3, deterministic=not train)(features))
    return features, logits


def to_input(images: np.ndarray) -> np.ndarray:
  """uint8 pixels (0-255) or floats in [0, 1] -> float32 in [-1, 1], the networks' range."""
  if images.dtype == np.uint8:
    return images.astype(np.float32) / np.float32(127.5) - np.float32(1)
  return images.astype(np.float32) * np.float32(2) - np.float32(1)


def load_split(dataset: str, split: str, manual_dir: str = '', data_dir: str = '',
               limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Returns the first `limit` (default all) images uint8 [N, 28, 28, 1] and labels [N] of a split.

  Args:
    dataset: 'fashion_mnist' or 'mnist'.
    split: 'train' or 'test'.
    manual_dir: '' or a folder of the IDX files, as config.data.manual_dir.
    data_dir: where tfds keeps prepared data sets, as config.data.data_dir.
    limit: how many examples to read; None for the whole split.
  """
  source = idx.load_source(dataset, split, manual_dir=manual_dir, data_dir=data_dir)
  count = len(source) if limit is None else min(limit, len(source))
  # One batched read: reading records one at a time costs ~4x more.
  examples = source.__getitems__(range(count))
  return (np.stack([example['image'] for example in examples]),
          np.array([example['label'] for example in examples], np.int32))


@jax.jit
def _apply(variables: Any, images: jax.Array) -> tuple[jax.Array, jax.Array]:
  return Classifier().apply(variables, images)


@dataclasses.dataclass(frozen=True)
class FeatureNet:
  """A trained classifier of one data set; `checksum` keys the statistics cached under it."""
  dataset: str
  variables: Any  # {'params': ..., 'batch_stats': ...}
  checksum: str  # sha256 of the weights file

  def features_and_logits(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Features [N, 256] and logits [N, 10] of images [N, 28, 28, 1] in [-1, 1]; pure, jit-able."""
    return _apply(self.variables, images)


def embed(net: FeatureNet, images: np.ndarray,
          batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
  """Features and logits of many images, `batch_size` at a time (bounds the activations' memory).

  Args:
    net: the feature net.
    images: [N, 28, 28, 1], uint8 pixels or floats in [0, 1].
    batch_size: images per call.
  Returns:
    float32 numpy arrays: features [N, 256] and logits [N, 10].
  """
  features, logits = zip(*(net.features_and_logits(to_input(images[i:i + batch_size]))
                           for i in range(0, len(images), batch_size)))
  return np.concatenate(features), np.concatenate(logits)


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def _weights_file(dataset: str) -> str:
  return f'{dataset}.msgpack'


def _command(dataset: str) -> str:
  return f'python -m gan_jax.feature_net --dataset {dataset} --workdir DIR'


def load(dataset: str, weights_dir: str = '') -> FeatureNet:
  """Loads the feature net of `dataset` after checking its weights' sha256.

  Args:
    dataset: an image data set with shipped weights (see WEIGHTS).
    weights_dir: '' for the shipped weights; or a training command's workdir, whose
      `<dataset>.msgpack` is checked against the `<dataset>.msgpack.sha256` beside it.
  Returns:
    The FeatureNet.
  Raises:
    UserError: no weights for `dataset`, or missing or damaged weights; the message says
      which command makes them.
  """
  if weights_dir:
    path = os.path.join(weights_dir, _weights_file(dataset))
    checksum_file = paths.path(path + '.sha256')
    if not checksum_file.is_file():
      raise UserError(f'{path}.sha256 is missing: --feature_weights_dir must be the --workdir '
                      f'of `{_command(dataset)}`.')
    expected = checksum_file.read_text().split()[0]
  elif dataset in WEIGHTS:
    name, expected = WEIGHTS[dataset]
    path = os.path.join(WEIGHTS_DIR, name)
  else:
    raise UserError(f'No feature net ships for {dataset!r} (only for {", ".join(WEIGHTS)}); '
                    f'train one with `{_command(dataset)}` and pass --feature_weights_dir=DIR.')
  remedy = (f'Re-create it with `{_command(dataset)}`'
            + ('' if weights_dir else f', then copy DIR/{_weights_file(dataset)} to {path}'))
  weights_file = paths.path(path)
  if not weights_file.is_file():
    raise UserError(f'The feature net weights {path} are missing. {remedy}.')
  data = weights_file.read_bytes()
  checksum = _sha256(data)
  if checksum != expected:
    raise UserError(f'The feature net weights {path} have sha256 {checksum}, expected '
                    f'{expected}: the file is damaged or from another version. {remedy}.')
  variables = jax.tree.map(jnp.asarray, flax.serialization.msgpack_restore(data))
  return FeatureNet(dataset, variables, checksum)


def accuracy(net: FeatureNet, dataset: str, manual_dir: str = '', data_dir: str = '',
             limit: int | None = None) -> float:
  """Share of the first `limit` (default all) test images that `net` classifies right."""
  images, labels = load_split(dataset, 'test', manual_dir, data_dir, limit)
  _, logits = embed(net, images)
  return float(np.mean(np.argmax(logits, axis=-1) == labels))


def _batches(rng: np.random.Generator, count: int, batch_size: int):
  """Index arrays of one shuffled epoch; the last partial batch is dropped."""
  order = rng.permutation(count)
  return [order[i:i + batch_size] for i in range(0, count - batch_size + 1, batch_size)]


def train(dataset: str, *, seed: int = 0, epochs: int = 8, batch_size: int = 128,
          learning_rate: float = 1e-3, manual_dir: str = '',
          data_dir: str = '') -> tuple[Any, float]:
  """Trains the classifier of `dataset` on its train split.

  Args:
    dataset: 'fashion_mnist' or 'mnist'.
    seed: seeds the initialisation, the shuffling and the dropout.
    epochs: passes over the train split.
    batch_size: images per step.
    learning_rate: Adam's peak rate, decayed to 0 along a cosine.
    manual_dir: '' or a folder of the IDX files, as config.data.manual_dir.
    data_dir: where tfds keeps prepared data sets, as config.data.data_dir.
  Returns:
    (variables {'params', 'batch_stats'}, test accuracy).
  """
  images, labels = load_split(dataset, 'train', manual_dir, data_dir)
  if len(images) < batch_size:
    raise UserError(f'The {dataset} train split has {len(images)} images, fewer than '
                    f'--batch_size={batch_size}.')
  model = Classifier()
  init_key, dropout_key = jax.random.split(jax.random.PRNGKey(seed))
  variables = model.init(init_key, jnp.zeros((1,) + images.shape[1:]))
  steps_per_epoch = len(images) // batch_size
  tx = optax.adam(optax.cosine_decay_schedule(learning_rate, epochs * steps_per_epoch))
  params, batch_stats = variables['params'], variables['batch_stats']
  opt_state = tx.init(params)

  @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
  def step(params, batch_stats, opt_state, step_index, x, y):
    def loss_fn(params):
      (_, logits), updates = model.apply(
          {'params': params, 'batch_stats': batch_stats}, x, train=True,
          mutable=['batch_stats'], rngs={'dropout': jax.random.fold_in(dropout_key, step_index)})
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
      return loss, updates['batch_stats']
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss

  rng = np.random.default_rng(seed)
  step_index, start = 0, time.time()
  for epoch in range(epochs):
    losses = []
    for batch in _batches(rng, len(images), batch_size):
      params, batch_stats, opt_state, loss = step(params, batch_stats, opt_state, step_index,
                                                  to_input(images[batch]), labels[batch])
      losses.append(loss)
      step_index += 1
    logging.info('epoch %d/%d: train loss %.4f (%.0f s)', epoch + 1, epochs,
                 float(np.mean(jax.device_get(losses))), time.time() - start)
  variables = {'params': params, 'batch_stats': batch_stats}
  return variables, accuracy(FeatureNet(dataset, variables, ''), dataset, manual_dir, data_dir)


def save(variables: Any, workdir: str, dataset: str) -> tuple[str, str]:
  """Writes WORKDIR/<dataset>.msgpack and its .sha256 (as sha256sum); returns (path, sha256)."""
  data = flax.serialization.msgpack_serialize(jax.tree.map(np.asarray, variables))
  checksum = _sha256(data)
  path = os.path.join(workdir, _weights_file(dataset))
  paths.write_atomically(path, lambda f: f.write(data))
  paths.write_atomically(path + '.sha256',
                         lambda f: f.write(f'{checksum}  {_weights_file(dataset)}\n'.encode()))
  return path, checksum


FLAGS = flags.FLAGS


def _define_flags() -> None:
  """Defines the command's flags, only when it runs as a program.

  Importing this module (gan_jax.evaluate and the tests do) then defines no flag that
  clashes with another program's, such as gan_jax.sample's --workdir.
  """
  flags.DEFINE_string('dataset', 'fashion_mnist', 'The image data set: fashion_mnist or mnist.')
  flags.DEFINE_string('workdir', None, 'Where to write <dataset>.msgpack and its .sha256.')
  flags.mark_flag_as_required('workdir')
  flags.DEFINE_integer('seed', 0, 'Seeds the initialisation, the shuffling and the dropout.')
  flags.DEFINE_integer('epochs', 8, 'Passes over the train split.')
  flags.DEFINE_integer('batch_size', 128, 'Images per step.')
  flags.DEFINE_float('learning_rate', 1e-3, "Adam's peak learning rate (cosine decay to 0).")
  flags.DEFINE_string('manual_dir', '', "'' or a folder of the IDX files (config.data.manual_dir).")
  flags.DEFINE_string('data_dir', '', 'Where tfds keeps prepared data, as config.data.data_dir.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  variables, test_accuracy = train(
      FLAGS.dataset, seed=FLAGS.seed, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
      learning_rate=FLAGS.learning_rate, manual_dir=FLAGS.manual_dir, data_dir=FLAGS.data_dir)
  path, checksum = save(variables, FLAGS.workdir, FLAGS.dataset)
  print(f'Test accuracy: {100 * test_accuracy:.2f}%')
  print(f'Wrote {path} ({paths.path(path).stat().length} bytes), sha256 {checksum}')
  print(f'To ship it: cp {path} {WEIGHTS_DIR}/ and set WEIGHTS[{FLAGS.dataset!r}] in '
        f"{os.path.abspath(__file__)} to ({_weights_file(FLAGS.dataset)!r}, '{checksum}').")


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
