r"""Sample quality of a trained GAN, or of a sample file, against real images.

python -m gan_jax.evaluate --workdir runs/sngan_cpu [--step N] [--num_samples 10000] [--seed 0]
python -m gan_jax.evaluate --samples samples.npy --dataset fashion_mnist [--num_samples N]
python -m gan_jax.evaluate --samples A.npy --reference B.npy --features inception
python -m gan_jax.evaluate --samples A.npy --reference STATS.npz [--inception_weights W.pth]

Prints one JSON line; with --workdir it is also appended to WORKDIR/eval.jsonl. Images are
scored in one of two feature spaces (--features; the line's "features" names it), and
numbers from different feature spaces, weights or resizings are not comparable:

inception: the FID Inception-v3 of the papers (gan_jax.inception; "inception_weights" holds
  its weights' sha256, "resize" the resizing), the default for every image data set but
  MNIST and Fashion-MNIST. The reference ("reference" in the line) is the training split
  of the samples' data set (its first --reference_count images, 50,000 as in the papers,
  fitted as training fits them), the images of --reference B.npy, or the published
  statistics of --reference STATS.npz (FID and Inception Score only). Metrics: fid, kid
  and kid_std, precision and recall (k = 3, against as many real images as samples),
  inception_score and inception_score_std over 10 splits; for a conditional model against
  a labelled data set, intra_fid too (each class's FID against its real images, averaged).
dataset: the data set's own classifier (gan_jax.feature_net; "feature_net" holds its
  weights' sha256), the default for MNIST and Fashion-MNIST, against the real test split:
  fid, kid, kid_std, precision, recall, inception_score (one split) and classes_covered;
  for a conditional model also class_faithfulness (the share of samples the classifier
  assigns to the class asked for; its test accuracy, ~0.93 on Fashion-MNIST, is the
  ceiling) and intra_fid, each also per class. "floor" holds the same metrics for as many
  real training images, what a perfect generator scores with that many samples. Fashion-
  MNIST's floor at 10,000 samples, with the shipped classifier: FID 1.01, KID -0.005 (std
  0.083), precision 0.83, recall 0.82, Inception Score 9.19, 10 classes covered.
Toy data sets: modes_covered of num_modes and high_quality_share, beside the floor of as
  many points drawn from the mixture itself.

Features of real images are computed once and cached (gan_jax.reference) in $GAN_JAX_CACHE
(default ~/.cache/gan_jax) or --cache_dir, where the Inception weights are downloaded too.
"""
import json
from typing import Any, NamedTuple

from absl import app
from absl import flags
import jax
import ml_collections
import numpy as np

from gan_jax import (checkpoints, cli, configs, data, feature_net, inception, metrics, paths,
                     reference, sample, scores)
from gan_jax.errors import UserError
from gan_jax.reference import Reference

FEATURES = ('auto', 'inception', 'dataset')
EVAL_FILE = 'eval.jsonl'


class Options(NamedTuple):
  """How images are scored; the command's flags of the same names."""
  features: str = 'auto'  # one of FEATURES: 'auto' is 'dataset' for MNIST-like sets
  reference: str = ''  # '' the data set's real images; or images .npy / statistics .npz
  reference_count: int = 50_000  # inception: training images of the reference (0: all)
  inception_weights: str = ''  # '' $GAN_JAX_INCEPTION_WEIGHTS or the cache's download
  resize: str = 'legacy'  # inception: one of inception.RESIZES
  feature_weights_dir: str = ''  # dataset: '' for the shipped classifier, or its workdir
  cache: str = ''  # '' for reference.cache_dir()


def _check_points(samples: np.ndarray, dataset: str) -> np.ndarray:
  if samples.ndim != 2 or samples.shape[1] != 2 or not np.issubdtype(samples.dtype, np.floating):
    raise UserError(f'Samples of {dataset!r} must be float points [N, 2]; got {samples.dtype} '
                    f'{list(samples.shape)}.')
  if not np.all(np.isfinite(samples)):
    raise UserError('The samples hold NaN or Inf values.')
  return samples


def check_images(images: np.ndarray, what: str = 'The samples',
                 channels: tuple[int, ...] = (1, 3)) -> np.ndarray:
  """Images NHW or NHWC, uint8 or floats in [0, 1] -> floats [N, H, H, C] in [0, 1]."""
  images = images[..., None] if images.ndim == 3 else images
  if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[3] not in channels:
    raise UserError(f'{what} must be square images NHW or NHWC with '
                    f'{" or ".join(map(str, channels))} channel(s), e.g. [10000, 32, 32, '
                    f'{channels[-1]}]; got {list(images.shape)}.')
  if images.dtype == np.uint8:
    return images.astype(np.float32) / np.float32(255)
  if not np.issubdtype(images.dtype, np.floating):
    raise UserError(f'{what} must be float32 in [0, 1] (as gan_jax.sample writes them) or '
                    f'uint8 0-255; got {images.dtype}.')
  low, high = float(np.min(images)), float(np.max(images))
  if not (np.isfinite(low) and np.isfinite(high)):
    raise UserError(f'{what} hold NaN or Inf values.')
  if low < 0 or high > 1:
    hint = ' If they are tanh outputs in [-1, 1], map them with (x + 1) / 2.' if low < 0 else ''
    raise UserError(f'{what} must be in [0, 1] (as gan_jax.sample writes them) or uint8 '
                    f'0-255; these range over [{low:.3g}, {high:.3g}].{hint}')
  return images.astype(np.float32)


def _resize(images: np.ndarray, size: int, batch_size: int = 1000) -> np.ndarray:
  """Resizes images [N, H, H, C] to the feature net's [N, size, size, C] (bilinear, antialiased)."""
  resize = jax.jit(lambda x: jax.image.resize(x, x.shape[:1] + (size, size) + x.shape[3:],
                                              'linear', antialias=True))
  return np.concatenate([np.asarray(resize(images[i:i + batch_size]))
                         for i in range(0, len(images), batch_size)])


def _image_floor(net: feature_net.FeatureNet, real: Reference, test_images: np.ndarray,
                 num_samples: int, config: ml_collections.ConfigDict,
                 cache: str) -> dict[str, float | int]:
  """image_metrics of the first `num_samples` training images, from the cache or computed."""
  train_images, _ = feature_net.load_split(net.dataset, 'train', config.data.manual_dir,
                                           config.data.data_dir, num_samples)
  path = reference.cache_path(cache, f'{net.dataset}_floor_{len(train_images)}', net.checksum,
                              train_images.tobytes(), test_images.tobytes()) + '.json'
  cached = paths.path(path)
  if cached.exists():
    return json.loads(cached.read_text())
  floor = {'num_samples': len(train_images),
           **scores.image_metrics(*feature_net.embed(net, train_images), real, seed=0)}
  reference.write_cache(path, lambda f: f.write(json.dumps(floor).encode()))
  return floor


def _score_with_dataset_net(images: np.ndarray, config: ml_collections.ConfigDict,
                            labels: np.ndarray | None, seed: int,
                            options: Options) -> dict[str, Any]:
  """The metrics in the feature space of the data set's own classifier, beside their floor."""
  net = feature_net.load(config.dataset, options.feature_weights_dir)
  if images.shape[1] != feature_net.INPUT_SIDE:  # e.g. experiments/dcgan64.py's 64x64 images
    images = _resize(images, feature_net.INPUT_SIDE)
  cache = reference.cache_dir(options.cache)
  test_images, test_labels = feature_net.load_split(config.dataset, 'test',
                                                    config.data.manual_dir, config.data.data_dir)
  embed = lambda images, unused_what: feature_net.embed(net, images)
  real = reference.of_images(embed, (net.checksum,), test_images, f'{config.dataset}_test',
                             cache, test_labels)
  features, logits = embed(images, 'samples')
  result = {'features': 'dataset', **scores.image_metrics(features, logits, real, seed)}
  if labels is not None:
    result.update(scores.class_faithfulness(logits, labels))
    result.update(scores.intra_fid(features, labels, real, logits.shape[1]))
  return {**result, 'feature_net': net.checksum[:16],
          'floor': _image_floor(net, real, test_images, len(images), config, cache)}


def _inception_reference(embed: reference.Embed, keys: tuple[str, ...],
                         config: ml_collections.ConfigDict | None, options: Options,
                         cache: str) -> tuple[Reference, str]:
  """The Reference that --reference names, else the data set's training split; and its name."""
  if options.reference.endswith('.npz'):
    return reference.of_statistics(options.reference), f'{options.reference} (statistics)'
  if options.reference:
    images = check_images(read_samples(options.reference),
                          f'The reference images {options.reference}')
    return (reference.of_images(embed, keys, images, 'reference', cache),
            f'{options.reference} ({len(images)} images)')
  real = reference.of_split(embed, keys, config, 'train', options.reference_count, cache)
  return real, f'{config.dataset} train[:{len(real.features)}]'


def inception_net(options: Options) -> inception.Inception:
  """The Inception of `options`: loaded, or downloaded once, or one line saying why not."""
  return inception.load(options.inception_weights, reference.cache_dir(options.cache))


def _score_with_inception(images: np.ndarray, config: ml_collections.ConfigDict | None,
                          labels: np.ndarray | None, seed: int, options: Options) -> dict[str, Any]:
  """The metrics in the FID Inception-v3's feature space, against the reference."""
  if config is None and not options.reference:
    raise UserError('Scoring needs real images: pass --dataset=NAME (its training split) or '
                    '--reference=IMAGES.npy or STATISTICS.npz.')
  if options.resize not in inception.RESIZES:
    raise UserError(f'--resize must be one of {", ".join(inception.RESIZES)}; got '
                    f'{options.resize!r}.')
  net = inception_net(options)
  embed = lambda images, what: inception.embed(net, images, options.resize, what=what)
  real, described = _inception_reference(embed, (net.checksum, options.resize), config,
                                         options, reference.cache_dir(options.cache))
  features, logits = embed(images, 'samples')
  result = {'features': 'inception', **scores.image_metrics(
      features, logits, real, seed, scores.INCEPTION_SCORE_SPLITS, count_classes=False)}
  if labels is not None and real.labels is not None and config.data.num_classes > 1:
    result.update(scores.intra_fid(features, labels, real, config.data.num_classes))
  return {**result, 'inception_weights': net.checksum[:16], 'resize': options.resize,
          'reference': described}


def feature_space(dataset: str | None, features: str) -> str:
  """What --features means for `dataset`: 'inception' or 'dataset'."""
  if features not in FEATURES:
    raise UserError(f'--features must be one of {", ".join(FEATURES)}; got {features!r}.')
  if features == 'auto':
    return 'dataset' if dataset in data.IDX_DATASETS else 'inception'
  return features


def evaluate_samples(samples: np.ndarray, config: ml_collections.ConfigDict | None, *,
                     labels: np.ndarray | None = None, seed: int = 0,
                     options: Options = Options()) -> dict[str, Any]:
  """Scores generated samples against real ones; see the module docstring.

  Args:
    samples: images [N, H, W(, C)] as floats in [0, 1] or uint8, any square side, or
      points [N, 2] for toy data sets.
    config: the run's config, for its data set (config.dataset and config.data); None
      where options.reference holds the real images.
    labels: the classes [N] a conditional generator made the samples for; adds the class
      metrics. None for unconditional samples.
    seed: picks KID's subsets.
    options: the feature space and reference.
  Returns:
    {[dataset,] num_samples, features, the metrics, ...}.
  """
  dataset = config.dataset if config is not None else None
  if len(samples) < metrics.MIN_SAMPLES:
    raise UserError(f'Evaluation needs at least {metrics.MIN_SAMPLES} samples; got '
                    f'{len(samples)}.')
  result = {'dataset': dataset, 'num_samples': len(samples)} if dataset else {
      'num_samples': len(samples)}
  if dataset and data.is_toy(dataset):
    return {**result, **scores.toy_metrics(_check_points(samples, dataset), dataset),
            'floor': {'num_samples': len(samples), **scores.toy_floor(dataset, len(samples))}}
  labels = None if labels is None else np.asarray(labels)
  if feature_space(dataset, options.features) == 'dataset':
    if dataset not in data.IDX_DATASETS:
      raise UserError(f'--features=dataset scores in the feature space of a classifier of the '
                      f'data set, which exists for {", ".join(data.IDX_DATASETS)}; score '
                      f'{dataset or "these samples"} with --features=inception.')
    images = check_images(samples, channels=(1,))
    return {**result, **_score_with_dataset_net(images, config, labels, seed, options)}
  return {**result, **_score_with_inception(check_images(samples), config, labels, seed, options)}


def evaluate_checkpoint(workdir: str, step: int | None = None, num_samples: int = 10_000,
                        seed: int = 0, options: Options = Options(),
                        ema: bool = True) -> dict[str, Any]:
  """Loads a workdir's checkpoint (default: the latest) and scores `num_samples` of its samples.

  Args:
    workdir: a gan_jax training workdir.
    step: the checkpoint's step; None for the latest.
    num_samples: samples to generate and score.
    seed: picks the latents and KID's subsets.
    options: the feature space and reference.
    ema: score the generator's EMA when the run keeps one; False, the raw weights.
  Returns:
    {step, [ema,] ...}: `evaluate_samples`'s result, the checkpoint's step first; `ema`
    says which generator was scored when the run keeps an EMA.
  """
  loaded = checkpoints.load(workdir, step)
  samples = sample.sample(loaded, num_samples, seed, ema=ema)
  scored = {'ema': ema} if loaded.state.g_ema_params else {}
  return {'step': int(loaded.state.step), **scored,
          **evaluate_samples(samples, loaded.config, seed=seed, options=options,
                             labels=sample.sample_labels(loaded.config, num_samples))}


def samples_config(dataset: str, samples: np.ndarray, manual_dir: str = '',
                   data_dir: str = '') -> ml_collections.ConfigDict:
  """The config of a data set whose real images are fitted to the samples' side and channels."""
  config = configs.default()
  config.dataset = dataset
  config.data.manual_dir, config.data.data_dir = manual_dir, data_dir
  if samples.ndim in (3, 4) and not data.is_toy(dataset):
    config.data.image_size = samples.shape[1]
    config.data.channels = samples.shape[3] if samples.ndim == 4 else 1
  return config


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
  flags.DEFINE_enum('features', 'auto', FEATURES, "'inception' (the papers' FID Inception-v3), "
                    "'dataset' (the data set's own classifier: MNIST, Fashion-MNIST) or 'auto' "
                    '(dataset for those two, inception for every other).')
  flags.DEFINE_string('reference', '', 'The real side: images .npy (uint8, or floats in [0, 1]) '
                      'or published statistics .npz (mu, sigma); default the data set\'s.')
  flags.DEFINE_integer('reference_count', 50_000, 'inception: training images of the data set '
                       'that form the reference (0: all), as the papers\' 50,000.')
  flags.DEFINE_string('inception_weights', '', f'inception: pytorch-fid\'s {inception.WEIGHTS_FILE}'
                      f'; default ${inception.WEIGHTS_ENV}, or downloaded once into the cache.')
  flags.DEFINE_enum('resize', 'legacy', inception.RESIZES, "inception: 'legacy' (pytorch-fid's "
                    "bilinear) or 'clean' (clean-fid's PIL bicubic).")
  flags.DEFINE_string('feature_weights_dir', '', "dataset: a `gan_jax.feature_net` workdir whose "
                      'weights replace the shipped ones.')
  flags.DEFINE_string('cache_dir', '', 'Where to cache real images\' features and the Inception '
                      'weights; default $GAN_JAX_CACHE or ~/.cache/gan_jax.')
  flags.DEFINE_string('manual_dir', '', "With --samples: '' or a folder of the IDX files.")
  flags.DEFINE_string('data_dir', '', 'With --samples: where tfds keeps prepared data.')
  flags.DEFINE_bool('ema', True, "With --workdir: score the generator's EMA when the run keeps "
                    'one (config.g_ema_decay or g_ema_kimg); --noema scores the raw weights.')


def _run() -> dict[str, Any]:
  """Evaluates what the flags name."""
  options = Options(FLAGS.features, FLAGS.reference, FLAGS.reference_count,
                    FLAGS.inception_weights, FLAGS.resize, FLAGS.feature_weights_dir,
                    FLAGS.cache_dir)
  if FLAGS.samples:
    samples = read_samples(FLAGS.samples, FLAGS.num_samples)
    config = None
    if FLAGS.dataset:
      config = samples_config(FLAGS.dataset, samples, FLAGS.manual_dir, FLAGS.data_dir)
    elif FLAGS.workdir:
      config = checkpoints.read_config(FLAGS.workdir)
    if config is None and not FLAGS.reference:
      raise UserError('--samples needs --dataset (e.g. fashion_mnist) or --reference (images '
                      '.npy or statistics .npz).')
    return evaluate_samples(samples, config, seed=FLAGS.seed, options=options)
  if not FLAGS.workdir:
    raise UserError('Pass --workdir=DIR (a training run) or --samples=FILE.npy --dataset=NAME.')
  return evaluate_checkpoint(FLAGS.workdir, FLAGS.step, FLAGS.num_samples or 10_000,
                             FLAGS.seed, options, FLAGS.ema)


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
