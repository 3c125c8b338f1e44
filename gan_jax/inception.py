r"""The FID Inception-v3: the feature space in which papers report FID, KID, IS and precision/recall.

A Flax port of pytorch-fid's `fid_inception_v3`, itself the PyTorch form of the TensorFlow
graph of 2015-12-05 that TTUR's FID, the original Inception Score code and most GAN papers
use. It differs from torchvision's Inception-v3 in its weights, in average pools that do
not count padding, and in a max pool in the last block. It loads the standard weight file
`pt_inception-2015-12-05-6726825d.pth` (a PyTorch state dict, read by
`gan_jax.torch_weights` without torch) from `--inception_weights`,
$GAN_JAX_INCEPTION_WEIGHTS, or the cache, where it is downloaded once.

Inputs as pytorch-fid takes them: RGB in [0, 1] (grey images are repeated over three
channels), resized to 299x299, mapped to [-1, 1]. Two resizings (`RESIZES`):
  legacy: bilinear, as pytorch-fid's `F.interpolate(..., align_corners=False)`, without
    antialiasing (what published pytorch-fid and TTUR numbers used);
  clean: clean-fid's (Parmar et al., 2022): images quantised to uint8 as if saved to PNG,
    then PIL's bicubic resize with antialiasing, per channel in float.
Outputs: the 2048 pool features (FID, KID, precision/recall) and the 1008 logits without
the classifier's bias, over which the Inception Score's softmax is taken: the original
code (Salimans et al., 2016) multiplies the pool features by the softmax layer's weights
alone, and torch-fidelity's `logits_unbiased` does the same, over all 1008 classes.
"""
import dataclasses
import functools
import hashlib
import os
import time
import urllib.error
import urllib.request
from typing import Any

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from gan_jax import paths, torch_weights
from gan_jax.errors import UserError

WEIGHTS_FILE = 'pt_inception-2015-12-05-6726825d.pth'
WEIGHTS_SHA256 = '6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2'
WEIGHTS_URL = f'https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILE}'
WEIGHTS_ENV = 'GAN_JAX_INCEPTION_WEIGHTS'
INPUT_SIDE = 299
FEATURE_DIM = 2048
NUM_LOGITS = 1008
RESIZES = ('legacy', 'clean')

_HIGHEST = jax.lax.Precision.HIGHEST  # metrics in float32 also where matmuls default lower


class BasicConv(nn.Module):
  """Convolution without bias, batch norm (eps 1e-3, running statistics), ReLU."""
  features: int
  kernel: tuple[int, int]
  stride: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.Conv(self.features, self.kernel, self.stride, [(p, p) for p in self.padding],
                use_bias=False, precision=_HIGHEST, name='conv')(x)
    return nn.relu(nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x))


def _average_pool(x: jax.Array) -> jax.Array:
  """3x3, stride 1, over the pixels inside the image only (TensorFlow's, not torchvision's)."""
  return nn.avg_pool(x, (3, 3), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool(x: jax.Array, stride: int = 2) -> jax.Array:
  padding = ((1, 1), (1, 1)) if stride == 1 else 'VALID'
  return nn.max_pool(x, (3, 3), (stride, stride), padding)


def _concat(*branches: jax.Array) -> jax.Array:
  return jnp.concatenate(branches, axis=-1)  # torch's channel order, so features align


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    branch5x5 = BasicConv(64, (5, 5), padding=(2, 2), name='branch5x5_2')(
        BasicConv(48, (1, 1), name='branch5x5_1')(x))
    branch3x3dbl = BasicConv(64, (1, 1), name='branch3x3dbl_1')(x)
    branch3x3dbl = BasicConv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(branch3x3dbl)
    branch3x3dbl = BasicConv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_3')(branch3x3dbl)
    return _concat(BasicConv(64, (1, 1), name='branch1x1')(x), branch5x5, branch3x3dbl,
                   BasicConv(self.pool_features, (1, 1), name='branch_pool')(_average_pool(x)))


class InceptionB(nn.Module):
  @nn.compact
  def __call__(self, x):
    branch3x3dbl = BasicConv(64, (1, 1), name='branch3x3dbl_1')(x)
    branch3x3dbl = BasicConv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(branch3x3dbl)
    branch3x3dbl = BasicConv(96, (3, 3), stride=2, name='branch3x3dbl_3')(branch3x3dbl)
    return _concat(BasicConv(384, (3, 3), stride=2, name='branch3x3')(x), branch3x3dbl,
                   _max_pool(x))


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    row, column = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
    branch7x7 = BasicConv(c7, (1, 1), name='branch7x7_1')(x)
    branch7x7 = BasicConv(c7, **row, name='branch7x7_2')(branch7x7)
    branch7x7 = BasicConv(192, **column, name='branch7x7_3')(branch7x7)
    branch7x7dbl = BasicConv(c7, (1, 1), name='branch7x7dbl_1')(x)
    for i, (channels, shape) in enumerate(
        [(c7, column), (c7, row), (c7, column), (192, row)], start=2):
      branch7x7dbl = BasicConv(channels, **shape, name=f'branch7x7dbl_{i}')(branch7x7dbl)
    return _concat(BasicConv(192, (1, 1), name='branch1x1')(x), branch7x7, branch7x7dbl,
                   BasicConv(192, (1, 1), name='branch_pool')(_average_pool(x)))


class InceptionD(nn.Module):
  @nn.compact
  def __call__(self, x):
    branch3x3 = BasicConv(320, (3, 3), stride=2, name='branch3x3_2')(
        BasicConv(192, (1, 1), name='branch3x3_1')(x))
    branch7x7x3 = BasicConv(192, (1, 1), name='branch7x7x3_1')(x)
    branch7x7x3 = BasicConv(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(branch7x7x3)
    branch7x7x3 = BasicConv(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(branch7x7x3)
    branch7x7x3 = BasicConv(192, (3, 3), stride=2, name='branch7x7x3_4')(branch7x7x3)
    return _concat(branch3x3, branch7x7x3, _max_pool(x))


class InceptionE(nn.Module):
  """The last two blocks; the FID graph's second one max-pools where the paper averages."""
  max_pool: bool

  @nn.compact
  def __call__(self, x):
    def split(y, name):  # a 1x3 and a 3x1 convolution side by side
      return _concat(BasicConv(384, (1, 3), padding=(0, 1), name=f'{name}a')(y),
                     BasicConv(384, (3, 1), padding=(1, 0), name=f'{name}b')(y))

    branch3x3 = split(BasicConv(384, (1, 1), name='branch3x3_1')(x), 'branch3x3_2')
    branch3x3dbl = BasicConv(448, (1, 1), name='branch3x3dbl_1')(x)
    branch3x3dbl = BasicConv(384, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(branch3x3dbl)
    branch3x3dbl = split(branch3x3dbl, 'branch3x3dbl_3')
    pooled = _max_pool(x, stride=1) if self.max_pool else _average_pool(x)
    return _concat(BasicConv(320, (1, 1), name='branch1x1')(x), branch3x3, branch3x3dbl,
                   BasicConv(192, (1, 1), name='branch_pool')(pooled))


class FIDInceptionV3(nn.Module):
  """Images [N, H, W, 3] in [-1, 1] -> (pool features [N, 2048], unbiased logits [N, 1008])."""

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = BasicConv(32, (3, 3), stride=2, name='Conv2d_1a_3x3')(x)
    x = BasicConv(32, (3, 3), name='Conv2d_2a_3x3')(x)
    x = _max_pool(BasicConv(64, (3, 3), padding=(1, 1), name='Conv2d_2b_3x3')(x))
    x = BasicConv(80, (1, 1), name='Conv2d_3b_1x1')(x)
    x = _max_pool(BasicConv(192, (3, 3), name='Conv2d_4a_3x3')(x))
    for name, pool_features in [('Mixed_5b', 32), ('Mixed_5c', 64), ('Mixed_5d', 64)]:
      x = InceptionA(pool_features, name=name)(x)
    x = InceptionB(name='Mixed_6a')(x)
    for name, channels_7x7 in [('Mixed_6b', 128), ('Mixed_6c', 160), ('Mixed_6d', 160),
                               ('Mixed_6e', 192)]:
      x = InceptionC(channels_7x7, name=name)(x)
    x = InceptionD(name='Mixed_7a')(x)
    x = InceptionE(max_pool=False, name='Mixed_7b')(x)
    x = InceptionE(max_pool=True, name='Mixed_7c')(x)
    features = jnp.mean(x, axis=(1, 2))
    fc = self.param('fc', nn.initializers.lecun_normal(), (FEATURE_DIM, NUM_LOGITS))
    return features, jnp.dot(features, fc, precision=_HIGHEST)


# (torch module, torch name) -> (Flax collection, Flax name) in each BasicConv.
_FLAX_NAMES = {('conv', 'weight'): ('params', 'kernel'), ('bn', 'weight'): ('params', 'scale'),
               ('bn', 'bias'): ('params', 'bias'), ('bn', 'running_mean'): ('batch_stats', 'mean'),
               ('bn', 'running_var'): ('batch_stats', 'var')}


def variables_from_state_dict(state: dict[str, np.ndarray], name: str) -> dict[str, Any]:
  """pytorch-fid's state dict -> FIDInceptionV3's variables {'params', 'batch_stats'}.

  Args:
    state: {torch name: array}, with or without batch norm's num_batches_tracked.
    name: the weights file, for error messages.
  Raises:
    UserError: an entry is missing, unexpected or of the wrong shape.
  """
  variables = {'params': {}, 'batch_stats': {}}
  for key, value in state.items():
    *modules, leaf = key.split('.')
    if leaf == 'num_batches_tracked' or key == 'fc.bias':  # unused: see the module docstring
      continue
    if key == 'fc.weight':
      variables['params']['fc'] = value.T
      continue
    collection, flax_leaf = _FLAX_NAMES.get((modules[-1] if modules else '', leaf),
                                            ('unexpected', leaf))
    node = variables.setdefault(collection, {})
    for module in modules:
      node = node.setdefault(module, {})
    node[flax_leaf] = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value  # OIHW->HWIO
  expected = jax.eval_shape(FIDInceptionV3().init, jax.random.PRNGKey(0),
                            jnp.zeros((1, 75, 75, 3)))
  found = {jax.tree_util.keystr(p): v.shape
           for p, v in jax.tree_util.tree_leaves_with_path(variables)}
  wanted = {jax.tree_util.keystr(p): v.shape
            for p, v in jax.tree_util.tree_leaves_with_path(expected)}
  if found != wanted:
    missing = sorted(set(wanted) - set(found))
    unexpected = sorted(set(found) - set(wanted))
    misshapen = sorted(k for k in set(found) & set(wanted) if found[k] != wanted[k])
    raise UserError(f'{name} is not pytorch-fid\'s Inception-v3 state dict: '
                    f'{len(missing)} entries missing {missing[:2]}, {len(unexpected)} unexpected '
                    f'{unexpected[:2]}, {len(misshapen)} of another shape {misshapen[:2]}.')
  return jax.tree.map(lambda v: np.asarray(v, np.float32), variables)


def _download(path: str) -> None:
  """Downloads the standard weights to `path`, checking their sha256."""
  logging.info('Downloading the FID Inception weights from %s to %s', WEIGHTS_URL, path)
  try:
    with urllib.request.urlopen(WEIGHTS_URL, timeout=60) as response:
      data = response.read()
  except (urllib.error.URLError, OSError) as e:
    raise UserError(
        f'The FID Inception weights are not on this machine and could not be downloaded ({e}). '
        f'Download {WEIGHTS_URL} elsewhere, then pass --inception_weights=PATH, set '
        f'${WEIGHTS_ENV}=PATH, or put the file at {path}.') from e
  if (checksum := hashlib.sha256(data).hexdigest()) != WEIGHTS_SHA256:
    raise UserError(f'The download of {WEIGHTS_URL} has sha256 {checksum}, expected '
                    f'{WEIGHTS_SHA256}; nothing was kept. Try again.')
  paths.write_atomically(path, lambda f: f.write(data))


@dataclasses.dataclass(frozen=True)
class Inception:
  """The network's variables and the sha256 of their file, which keys cached statistics."""
  variables: Any
  checksum: str


@functools.lru_cache(maxsize=2)
def load(weights: str = '', cache: str = '') -> Inception:
  """The FID Inception-v3 from `weights`, else $GAN_JAX_INCEPTION_WEIGHTS, else the cache.

  Args:
    weights: a .pth state dict; '' for the environment variable's, or the standard file in
      `cache`, downloaded there once.
    cache: the cache folder (gan_jax.evaluate's).
  Returns:
    The Inception. A file other than the standard one is used, with a warning that its
    scores are not comparable with published ones.
  """
  path = weights or os.environ.get(WEIGHTS_ENV) or os.path.join(cache, WEIGHTS_FILE)
  file = paths.path(path)
  if not file.is_file():
    if weights or os.environ.get(WEIGHTS_ENV):
      raise UserError(f'The Inception weights {path} do not exist. Download {WEIGHTS_URL} '
                      'and pass its path.')
    _download(path)
  data = file.read_bytes()
  checksum = hashlib.sha256(data).hexdigest()
  if checksum != WEIGHTS_SHA256:
    logging.warning('%s is not the standard FID Inception weights file (sha256 %s, expected '
                    '%s): its scores are not comparable with published ones.', path,
                    checksum[:16], WEIGHTS_SHA256[:16])
  state = torch_weights.read_state_dict(data, path)
  variables = variables_from_state_dict(state, path)
  return Inception(jax.tree.map(jnp.asarray, variables), checksum)


def _as_rgb(images: np.ndarray) -> np.ndarray:
  """[N, H, W(, 1 or 3)] -> [N, H, W, 3]: grey repeated over the channels, as PIL's convert."""
  images = images[..., None] if images.ndim == 3 else images
  return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def resize_clean(images: np.ndarray) -> np.ndarray:
  """clean-fid's resize: uint8 quantisation, PIL bicubic (antialiased) per channel in float."""
  quantised = np.rint(np.clip(images, 0, 1) * 255).astype(np.float32)
  resized = np.empty(images.shape[:1] + (INPUT_SIDE, INPUT_SIDE, 3), np.float32)
  for i, image in enumerate(quantised):
    for c in range(3):
      channel = Image.fromarray(image[..., c], mode='F').resize(
          (INPUT_SIDE, INPUT_SIDE), Image.Resampling.BICUBIC)
      resized[i, ..., c] = np.clip(np.asarray(channel), 0, 255)
  return resized / np.float32(255)


@jax.jit
def resize_legacy(images: jax.Array) -> jax.Array:
  """pytorch-fid's resize of images [N, H, W, C] to 299x299: `F.interpolate(bilinear,
  align_corners=False)`: half-pixel centres, edges clamped, no antialiasing when shrinking."""
  return jax.image.resize(images, images.shape[:1] + (INPUT_SIDE, INPUT_SIDE) + images.shape[3:],
                          'linear', antialias=False)


@jax.jit
def _features_and_logits(variables: Any, images: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(pool features, logits) of images [N, H, W, 3] in [0, 1], legacy-resized to 299 here."""
  if images.shape[1:3] != (INPUT_SIDE, INPUT_SIDE):
    images = resize_legacy(images)
  return FIDInceptionV3().apply(variables, images * 2 - 1)


def embed(net: Inception, images: np.ndarray, resize: str = 'legacy', batch_size: int = 200,
          what: str = 'images') -> tuple[np.ndarray, np.ndarray]:
  """Pool features [N, 2048] and unbiased logits [N, 1008] of many images, with progress.

  Batches are split over this process's devices (the batch dimension sharded as in the
  train step); the last batch is padded to the full size, so one program serves all.

  Args:
    net: the network.
    images: [N, H, W(, C)], C 1 or 3, floats in [0, 1] or uint8; any side.
    resize: 'legacy' or 'clean' (see the module docstring).
    batch_size: images per call (at most), rounded up to a multiple of the device count.
    what: names the images in progress lines.
  """
  if resize not in RESIZES:
    raise ValueError(f'resize must be one of {RESIZES}; got {resize!r}.')
  devices = jax.local_devices()
  # A multiple of the device count, no larger than the images need.
  batch_size = -(-min(batch_size, len(images)) // len(devices)) * len(devices)
  sharding = jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(devices), ('batch',)),
                                        jax.sharding.PartitionSpec('batch'))
  features, logits, start, last_log = [], [], time.time(), time.time()
  for begin in range(0, len(images), batch_size):
    batch = _as_rgb(images[begin:begin + batch_size])
    batch = batch.astype(np.float32) / 255 if batch.dtype == np.uint8 else batch
    batch = resize_clean(batch) if resize == 'clean' else batch.astype(np.float32)
    count = len(batch)
    batch = np.pad(batch, [(0, batch_size - count)] + [(0, 0)] * 3)
    outputs = _features_and_logits(net.variables, jax.device_put(batch, sharding))
    features.append(np.asarray(outputs[0])[:count])
    logits.append(np.asarray(outputs[1])[:count])
    done = begin + count
    if time.time() - last_log > 30 or done == len(images):
      last_log = time.time()
      logging.info('Inception features of %s: %d/%d (%.0f s)', what, done, len(images),
                   last_log - start)
  return np.concatenate(features), np.concatenate(logits)
