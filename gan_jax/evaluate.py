r"""Sample quality of a trained GAN, or of a sample file, against the real test split.

python -m gan_jax.evaluate --workdir runs/sngan_cpu [--step N] [--num_samples 10000] [--seed 0]
python -m gan_jax.evaluate --samples samples.npy --dataset fashion_mnist [--num_samples N]

Prints one JSON line; with --workdir it is also appended to WORKDIR/eval.jsonl. Images
are scored in the feature space of `gan_jax.feature_net` (metrics from different feature
nets are not comparable; "feature_net" names the weights' sha256): fid, kid and kid_std,
precision and recall (k = 3), inception_score, classes_covered; for a conditional
model also class_faithfulness (the share of samples the feature net classifies as the
class asked for; its test accuracy, ~0.93 on Fashion-MNIST, is the ceiling) and intra_fid
(the mean over classes of each class's FID against that class's test images), each also
per class. Toy data sets:
modes_covered of num_modes, high_quality_share. "floor" holds the same metrics for as
many real training images (toy: points drawn from the mixture), i.e. what a perfect
generator scores with that many samples: read a GAN's numbers against it. Fashion-MNIST's
floor at 10,000 samples, with the shipped feature net: FID 1.01, KID -0.005 (std 0.083),
precision 0.83, recall 0.82, Inception Score 9.19, 10 classes covered.

The features of the real test split and the floor are computed once and cached in
$GAN_JAX_CACHE (default $XDG_CACHE_HOME/gan_jax, i.e. ~/.cache/gan_jax), or --cache_dir,
under a key made of the feature net's sha256 and a hash of the real images used.
"""
import functools
import hashlib
import json
import os
from typing import Any, BinaryIO, Callable, NamedTuple

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import checkpoints, cli, data, feature_net, input_pipeline, metrics, paths, sample
from gan_jax.errors import UserError

IMAGE_METRICS = ('fid', 'kid', 'kid_std', 'precision', 'recall', 'inception_score',
                 'classes_covered')
KID_SUBSET_SIZE = 1000  # as the reference (Binkowski et al., 2018), or all points if fewer
EVAL_FILE = 'eval.jsonl'


def cache_dir(override: str = '') -> str:
  """The cache folder: `override`, else $GAN_JAX_CACHE, else $XDG_CACHE_HOME/gan_jax."""
  xdg = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return override or os.environ.get('GAN_JAX_CACHE') or os.path.join(xdg, 'gan_jax')


def _cache_path(root: str, name: str, *keys: str | bytes) -> str:
  """`root/name_<digest>`: the digest of `keys` changes with the weights or the data."""
  digest = hashlib.sha256()
  for key in keys:
    digest.update(hashlib.sha256(key.encode() if isinstance(key, str) else key).digest())
  return os.path.join(root, f'{name}_{digest.hexdigest()[:16]}')


def _write_cache(path: str, write: Callable[[BinaryIO], None]) -> None:
  """`paths.write_atomically`, for a cache: a failure only warns."""
  try:
    paths.write_atomically(path, write)
  except OSError as e:  # a read-only or full cache costs time, not the result
    logging.warning('Could not cache %s: %s', path, e)


class Reference(NamedTuple):
  """Features [N, D] of real test images and their mean [D] and covariance [D, D]."""
  features: np.ndarray
  mu: np.ndarray
  sigma: np.ndarray


def reference_statistics(net: feature_net.FeatureNet, images: np.ndarray,
                         cache: str) -> Reference:
  """The Reference of real `images` (uint8), from the cache or computed and cached."""
  path = _cache_path(cache, f'{net.dataset}_test_{len(images)}', net.checksum,
                     images.tobytes()) + '.npz'
  cached = paths.path(path)
  if cached.exists():
    with cached.open('rb') as f, np.load(f) as saved:
      return Reference(saved['features'], saved['mu'], saved['sigma'])
  features, _ = feature_net.embed(net, images)
  reference = Reference(features, *map(np.asarray, metrics.feature_statistics(features)))
  _write_cache(path, lambda f: np.savez(f, **reference._asdict()))
  return reference


def _number(value: Any) -> float | int:
  """A JSON-friendly scalar: ints stay ints, floats keep 6 significant digits."""
  value = np.asarray(value)
  return int(value) if np.issubdtype(value.dtype, np.integer) else float(f'{float(value):.6g}')


@functools.partial(jax.jit, static_argnames='kid_subset_size')
def _image_metric_values(features: jax.Array, logits: jax.Array, reference: Reference,
                         key: jax.Array, kid_subset_size: int) -> dict[str, jax.Array]:
  # One program: run op by op, the metrics compile ~130 small ones (10 s on 2 CPU cores).
  mu, sigma = metrics.feature_statistics(features)
  kid, kid_std = metrics.kernel_inception_distance(key, features, reference.features,
                                                   subset_size=kid_subset_size)
  precision, recall = metrics.precision_recall(reference.features, features, k=3)
  return {
      'fid': metrics.frechet_distance(mu, sigma, reference.mu, reference.sigma),
      'kid': kid, 'kid_std': kid_std, 'precision': precision, 'recall': recall,
      'inception_score': metrics.inception_score(logits),
      'classes_covered': metrics.classes_covered(logits),
  }


def image_metrics(features: np.ndarray, logits: np.ndarray, reference: Reference,
                  seed: int) -> dict[str, float | int]:
  """FID, KID, precision/recall, Inception Score and classes covered of generated images.

  Args:
    features: feature-net features [N, D] of the generated images.
    logits: feature-net logits [N, K] of the same images.
    reference: the real test split's Reference.
    seed: picks KID's subsets.
  Returns:
    {fid, kid, kid_std, precision, recall, inception_score, classes_covered}.
  """
  subset_size = min(KID_SUBSET_SIZE, len(features), len(reference.features))
  values = _image_metric_values(features, logits, reference, jax.random.PRNGKey(seed),
                                subset_size)
  return {name: _number(values[name]) for name in IMAGE_METRICS}


def toy_metrics(points: np.ndarray, dataset: str) -> dict[str, float | int]:
  """Modes covered (of num_modes) and the share of high-quality points of a toy data set."""
  centers, std = input_pipeline.toy_modes(dataset)
  coverage = metrics.mode_coverage(jnp.asarray(points), centers, std)
  return {'modes_covered': _number(coverage.modes_covered), 'num_modes': len(centers),
          'high_quality_share': _number(coverage.high_quality_share)}


def _toy_floor(dataset: str, num_samples: int) -> dict[str, float | int]:
  """toy_metrics of `num_samples` points drawn from the mixture itself."""
  centers, std = input_pipeline.toy_modes(dataset)
  rng = np.random.default_rng(0)
  points = centers[rng.integers(len(centers), size=num_samples)]
  return toy_metrics(points + std * rng.standard_normal(points.shape), dataset)


def class_metrics(features: np.ndarray, logits: np.ndarray, labels: np.ndarray,
                  reference: Reference, test_labels: np.ndarray) -> dict[str, Any]:
  """A conditional generator's class faithfulness and intra-class FID (Miyato & Koyama, 2018).

  Args:
    features, logits: feature-net outputs [N, D], [N, K] of generated images.
    labels: the classes [N] they were generated for.
    reference: the real test split's Reference, in test-split order.
    test_labels: the test split's labels [M].
  Returns:
    {class_faithfulness, class_faithfulness_per_class, intra_fid, intra_fid_per_class}:
    per-class lists indexed by class, None for a class without two samples and two test
    images.
  """
  num_classes = logits.shape[1]
  overall, per_class = metrics.class_faithfulness(logits, labels, num_classes)
  fids = [None] * num_classes
  for k in np.unique(labels):
    fake, real = features[labels == k], reference.features[test_labels == k]
    if min(len(fake), len(real)) > 1:  # a covariance needs two examples
      fids[k] = _number(metrics.frechet_distance(*metrics.feature_statistics(fake),
                                                 *metrics.feature_statistics(real)))
  return {'class_faithfulness': _number(overall),
          'class_faithfulness_per_class': [None if np.isnan(v) else _number(v)
                                           for v in np.asarray(per_class)],
          'intra_fid': _number(np.mean([fid for fid in fids if fid is not None] or np.nan)),
          'intra_fid_per_class': fids}


def _image_floor(net: feature_net.FeatureNet, reference: Reference, test_images: np.ndarray,
                 num_samples: int, manual_dir: str, data_dir: str,
                 cache: str) -> dict[str, float | int]:
  """image_metrics of the first `num_samples` training images, from the cache or computed."""
  train_images, _ = feature_net.load_split(net.dataset, 'train', manual_dir, data_dir,
                                           num_samples)
  path = _cache_path(cache, f'{net.dataset}_floor_{len(train_images)}', net.checksum,
                     train_images.tobytes(), test_images.tobytes()) + '.json'
  cached = paths.path(path)
  if cached.exists():
    return json.loads(cached.read_text())
  floor = {'num_samples': len(train_images),
           **image_metrics(*feature_net.embed(net, train_images), reference, seed=0)}
  _write_cache(path, lambda f: f.write(json.dumps(floor).encode()))
  return floor


def _dataset_info(dataset: str) -> data.DatasetInfo:
  """The info of a data set that evaluate can score: a toy, or one with a feature net."""
  if data.can_evaluate(dataset):
    return data.source_info(ml_collections.ConfigDict({'dataset': dataset}))
  raise UserError(f'gan_jax.evaluate scores samples in the feature space of a classifier of '
                  f'their data set, which exists for {", ".join(data.IDX_DATASETS)} and the '
                  f'toy data sets only; {dataset!r} needs Inception features, which are not '
                  'built yet.')


def _check_points(samples: np.ndarray, dataset: str) -> np.ndarray:
  if samples.ndim != 2 or samples.shape[1] != 2 or not np.issubdtype(samples.dtype, np.floating):
    raise UserError(f'Samples of {dataset!r} must be float points [N, 2]; got {samples.dtype} '
                    f'{list(samples.shape)}.')
  if not np.all(np.isfinite(samples)):
    raise UserError('The samples hold NaN or Inf values.')
  return samples


def _check_images(samples: np.ndarray, dataset: str) -> np.ndarray:
  """Images NHW or NHWC, uint8 or floats in [0, 1] -> floats [N, H, H, C] in [0, 1]."""
  shape = _dataset_info(dataset).shape
  images = samples[..., None] if samples.ndim == 3 else samples
  if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[3] != shape[2]:
    raise UserError(f'Samples of {dataset!r} must be square images NHW or NHWC with '
                    f'{shape[2]} channel(s), e.g. {list((10_000,) + shape)}; got '
                    f'{list(samples.shape)}.')
  if images.dtype == np.uint8:
    return images.astype(np.float32) / np.float32(255)
  if not np.issubdtype(images.dtype, np.floating):
    raise UserError(f'Images must be float32 in [0, 1] (as gan_jax.sample writes them) or '
                    f'uint8 0-255; got {images.dtype}.')
  low, high = float(np.min(images)), float(np.max(images))
  if not (np.isfinite(low) and np.isfinite(high)):
    raise UserError('The samples hold NaN or Inf values.')
  if low < 0 or high > 1:
    hint = ' If they are tanh outputs in [-1, 1], map them with (x + 1) / 2.' if low < 0 else ''
    raise UserError(f'Images must be in [0, 1] (as gan_jax.sample writes them) or uint8 '
                    f'0-255; these range over [{low:.3g}, {high:.3g}].{hint}')
  return images.astype(np.float32)


def _resize(images: np.ndarray, size: int, batch_size: int = 1000) -> np.ndarray:
  """Resizes images [N, H, H, C] to the feature net's [N, size, size, C] (bilinear, antialiased)."""
  resize = jax.jit(lambda x: jax.image.resize(x, x.shape[:1] + (size, size) + x.shape[3:],
                                              'linear', antialias=True))
  return np.concatenate([np.asarray(resize(images[i:i + batch_size]))
                         for i in range(0, len(images), batch_size)])


def evaluate_samples(samples: np.ndarray, dataset: str, *, labels: np.ndarray | None = None,
                     seed: int = 0, manual_dir: str = '', data_dir: str = '',
                     weights_dir: str = '', cache: str = '') -> dict[str, Any]:
  """Scores generated samples against the real test split of `dataset`, beside their floor.

  Args:
    samples: images [N, H, W(, C)] as floats in [0, 1] or uint8 (any square size: they are
      resized to the data set's), or points [N, 2] for toy data sets.
    dataset: the data set the generator was trained on.
    labels: the classes [N] a conditional generator made the samples for; adds
      `class_metrics`. None for unconditional samples.
    seed: picks KID's subsets.
    manual_dir: '' or a folder of the IDX files, as config.data.manual_dir.
    data_dir: where tfds keeps prepared data sets, as config.data.data_dir.
    weights_dir: '' for the shipped feature net, or a `gan_jax.feature_net` workdir.
    cache: the cache folder; '' for `cache_dir()`.
  Returns:
    {dataset, num_samples, the metrics, ["feature_net",] "floor": {num_samples, the
    metrics}}; see the module docstring.
  """
  info = _dataset_info(dataset)
  if len(samples) < metrics.MIN_SAMPLES:
    raise UserError(f'Evaluation needs at least {metrics.MIN_SAMPLES} samples; got '
                    f'{len(samples)}.')
  result = {'dataset': dataset, 'num_samples': len(samples)}
  if info.kind == 'points':
    return {**result, **toy_metrics(_check_points(samples, dataset), dataset),
            'floor': {'num_samples': len(samples), **_toy_floor(dataset, len(samples))}}
  images = _check_images(samples, dataset)
  if images.shape[1] != info.shape[0]:  # e.g. experiments/dcgan64.py's 64x64 images
    images = _resize(images, info.shape[0])
  net = feature_net.load(dataset, weights_dir)
  cache = cache_dir(cache)
  test_images, test_labels = feature_net.load_split(dataset, 'test', manual_dir, data_dir)
  reference = reference_statistics(net, test_images, cache)
  features, logits = feature_net.embed(net, images)
  result.update(image_metrics(features, logits, reference, seed))
  if labels is not None:
    result.update(class_metrics(features, logits, np.asarray(labels), reference, test_labels))
  return {**result, 'feature_net': net.checksum[:16],
          'floor': _image_floor(net, reference, test_images, len(images), manual_dir, data_dir,
                                cache)}


def evaluate_checkpoint(workdir: str, step: int | None = None, num_samples: int = 10_000,
                        seed: int = 0, weights_dir: str = '', cache: str = '',
                        ema: bool = True) -> dict[str, Any]:
  """Loads a workdir's checkpoint (default: the latest) and scores `num_samples` of its samples.

  Args:
    workdir: a gan_jax training workdir.
    step: the checkpoint's step; None for the latest.
    num_samples: samples to generate and score.
    seed: picks the latents and KID's subsets.
    weights_dir: '' for the shipped feature net, or a `gan_jax.feature_net` workdir.
    cache: the cache folder; '' for `cache_dir()`.
    ema: score the generator's EMA when the run keeps one; False, the raw weights.
  Returns:
    {step, [ema,] ...}: `evaluate_samples`'s result, the checkpoint's step first; `ema`
    says which generator was scored when the run keeps an EMA.
  """
  loaded = checkpoints.load(workdir, step)
  samples = sample.sample(loaded, num_samples, seed, ema=ema)
  config = loaded.config
  scored = {'ema': ema} if loaded.state.g_ema_params else {}
  return {'step': int(loaded.state.step), **scored,
          **evaluate_samples(samples, config.dataset, seed=seed,
                             labels=sample.sample_labels(config, num_samples),
                             manual_dir=config.data.manual_dir, data_dir=config.data.data_dir,
                             weights_dir=weights_dir, cache=cache)}


def read_samples(path: str, num_samples: int | None = None) -> np.ndarray:
  """The first `num_samples` (default all) samples of a .npy file, as gan_jax.sample writes."""
  file = paths.path(path)
  if not file.is_file():
    raise UserError(f'{path} does not exist.')
  try:
    with file.open('rb') as f:
      samples = np.load(f, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise UserError(f'{path} is not a .npy array file ({e}).') from e
  if samples.ndim < 2:
    raise UserError(f'{path} holds an array of shape {list(samples.shape)}; expected samples '
                    '[N, H, W(, C)] or points [N, 2].')
  if num_samples is not None and len(samples) < num_samples:
    raise UserError(f'{path} holds {len(samples)} samples, fewer than --num_samples='
                    f'{num_samples}.')
  return samples[:num_samples]


def append_result(workdir: str, result: dict[str, Any]) -> None:
  """Appends `result` as one JSON line to WORKDIR/eval.jsonl."""
  with paths.open_append(paths.path(workdir) / EVAL_FILE) as f:
    f.write(json.dumps(result).encode() + b'\n')


FLAGS = flags.FLAGS


def _define_flags() -> None:
  """Defines the command's flags, only when it runs as a program (see feature_net's)."""
  flags.DEFINE_string('workdir', None, 'A training workdir: scores its checkpoint and appends '
                      f'the result to WORKDIR/{EVAL_FILE}.')
  flags.DEFINE_integer('step', None, 'With --workdir: the checkpoint step; default the latest.')
  flags.DEFINE_string('samples', None, 'A .npy file of samples to score instead of a checkpoint '
                      '(gan_jax.sample\'s format: images in [0, 1] or uint8, or [N, 2] points).')
  flags.DEFINE_string('dataset', None, 'With --samples: the data set they imitate; default the '
                      "--workdir config's.")
  flags.DEFINE_integer('num_samples', None, 'Samples to score: default 10,000 generated, or all '
                       'of --samples.')
  flags.DEFINE_integer('seed', 0, 'Seed of the latents and of the KID subsets.')
  flags.DEFINE_string('feature_weights_dir', '', "A `gan_jax.feature_net` workdir whose weights "
                      'replace the shipped ones.')
  flags.DEFINE_string('cache_dir', '', 'Where to cache the real data statistics; default '
                      '$GAN_JAX_CACHE or ~/.cache/gan_jax.')
  flags.DEFINE_string('manual_dir', '', "With --samples: '' or a folder of the IDX files.")
  flags.DEFINE_string('data_dir', '', 'With --samples: where tfds keeps prepared data.')
  flags.DEFINE_bool('ema', True, "With --workdir: score the generator's EMA when the run keeps "
                    'one (config.g_ema_decay); --noema scores the raw weights.')


def _run() -> dict[str, Any]:
  """Evaluates what the flags name."""
  if FLAGS.samples:
    dataset = FLAGS.dataset
    if not dataset and FLAGS.workdir and (config := checkpoints.read_config(FLAGS.workdir)):
      dataset = config.dataset
    if not dataset:
      raise UserError('--samples needs --dataset (e.g. fashion_mnist).')
    return evaluate_samples(read_samples(FLAGS.samples, FLAGS.num_samples), dataset,
                            seed=FLAGS.seed, manual_dir=FLAGS.manual_dir,
                            data_dir=FLAGS.data_dir, weights_dir=FLAGS.feature_weights_dir,
                            cache=FLAGS.cache_dir)
  if not FLAGS.workdir:
    raise UserError('Pass --workdir=DIR (a training run) or --samples=FILE.npy --dataset=NAME.')
  return evaluate_checkpoint(FLAGS.workdir, FLAGS.step, FLAGS.num_samples or 10_000,
                             FLAGS.seed, FLAGS.feature_weights_dir, FLAGS.cache_dir, FLAGS.ema)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  result = _run()
  if FLAGS.workdir:
    append_result(FLAGS.workdir, result)
  print(json.dumps(result))


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
