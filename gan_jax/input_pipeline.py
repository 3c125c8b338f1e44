"""Training data as checkpointable grain iterators: any image data set, and 2-D toy mixtures.

Batches are dicts {'data': examples, 'label': int32 classes}: the labels travel with the
examples to the train step, where conditional models use them and others ignore them.

The sequence of global batches is a function of the seed alone: the data are shuffled
globally, cut into global batches, and each host takes its rows of each one. So a run
sees the same batches on 1 host with 2 devices as on 2 hosts with 1 device each. Images
are cropped, resized, given their channels and flipped while they are read (in grain
worker processes when config.data.workers > 0); small data sets are fitted once and held
in memory instead (config.data.cache_in_memory_mb).
"""
import functools
import sys

from absl import flags
import grain
import ml_collections
import numpy as np

from gan_jax import data, growth
from gan_jax.data.transform import fit_image
from gan_jax.errors import UserError

# Offsets of the random streams drawn beside the shuffle, so that none repeats another.
_FLIP_STREAM = 1
# grain's switch for a profiler server in each worker process (default off).
_GRAIN_WORKER_PROFILING = 'grain_enable_multiprocess_worker_profiling'


def data_shape(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """The shape of one training example: images cropped and resized to config.data.image_size
  and with config.data.channels, where those are set."""
  return data.info(config).shape


def num_classes(config: ml_collections.ConfigDict) -> int:
  """How many classes the labels of config.dataset take (0, 1, ..., num_classes - 1)."""
  return data.info(config).num_classes


def fit_examples(examples, shape: tuple[int, ...], crop: str) -> tuple[np.ndarray, np.ndarray]:
  """uint8 images [N, *shape] and int32 labels [N] of examples as a source gives them."""
  images = [example['image'] for example in examples]
  if any(image.shape != shape for image in images):
    images = [fit_image(image, shape[0], shape[2], crop) for image in images]
  labels = [example.get('label', 0) for example in examples]
  return np.stack(images), np.array(labels, np.int32)


def _training_count(config: ml_collections.ConfigDict, split: str, available: int) -> int:
  """Training uses only the first config.data.num_examples (if > 0) of its split."""
  if split == 'train' and config.data.num_examples:
    return min(config.data.num_examples, available)
  return available


def load_examples(config: ml_collections.ConfigDict,
                  split: str = 'train') -> tuple[np.ndarray, np.ndarray]:
  """An image data set's split in memory: uint8 images [N, *data_shape] and int32 labels [N].

  Reads in one batched call (reading records one at a time costs ~4x more); training's
  split is cut to config.data.num_examples.
  """
  source, _ = data.load(config, split)
  count = _training_count(config, split, len(source))
  return fit_examples(source.__getitems__(range(count)), data_shape(config), config.data.crop)


def toy_modes(name: str) -> tuple[np.ndarray, float]:
  """Returns the mode centers [K, 2] and the per-coordinate std of toy data set `name`.

  These are the benchmarks of Unrolled GAN, VEEGAN and PacGAN: 'ring8' has 8 modes on a
  circle of radius 2 with std 0.02, 'grid25' 25 modes on {-4, -2, 0, 2, 4}^2 with std 0.05.
  """
  if not data.is_toy(name):
    raise UserError(f'{name!r} is not a toy data set; toy ones: {", ".join(data.TOY_DATASETS)}.')
  if name == 'ring8':
    angles = 2 * np.pi * np.arange(8) / 8
    return 2 * np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.02
  axis = np.arange(-4, 5, 2, dtype=np.float64)
  return np.stack(np.meshgrid(axis, axis, indexing='ij'), axis=-1).reshape(-1, 2), 0.05


def _toy_batch(index: int, *, centers: np.ndarray, std: float, seed: int,
               batch_size: int) -> dict[str, np.ndarray]:
  """Draws toy batch number `index` of the whole stream; equal arguments, equal batch.

  Each point's label is the mode it was drawn from.
  """
  # One generator per batch, not per point: seeding costs as much as drawing a whole batch.
  rng = np.random.default_rng([seed, index])
  modes = rng.integers(len(centers), size=batch_size)
  points = centers[modes] + std * rng.standard_normal((batch_size, 2))
  return {'data': points.astype(np.float32), 'label': modes.astype(np.int32)}


def _scale(images: np.ndarray) -> np.ndarray:
  """Maps uint8 pixels to float32 in [-1, 1]."""
  return images.astype(np.float32) / np.float32(127.5) - np.float32(1)


class _HostRows:
  """Reads this host's rows of global batch number `index`: fitted, flipped, scaled.

  A class rather than a closure so that grain can send it to its worker processes.
  """

  def __init__(self, config: ml_collections.ConfigDict, rows: slice, batch_size: int, source=None,
               in_memory: tuple[np.ndarray, np.ndarray] | None = None):
    self._rows, self._source, self._in_memory = rows, source, in_memory
    self._shape, self._crop = data_shape(config), config.data.crop
    self._seed, self._batch_size = config.seed, batch_size
    self._flip = config.data.random_flip

  def __call__(self, index: int, global_indices: np.ndarray) -> dict[str, np.ndarray]:
    indices = global_indices[self._rows]
    if self._in_memory is not None:
      images, labels = (array[indices] for array in self._in_memory)
    else:
      images, labels = fit_examples(self._source.__getitems__(indices.tolist()), self._shape,
                                     self._crop)
    if self._flip:  # drawn for the global batch: the same flips on any number of hosts
      flips = np.random.default_rng([self._seed, _FLIP_STREAM, index]).random(self._batch_size)
      images = np.where((flips[self._rows] < 0.5)[:, None, None, None], images[:, :, ::-1],
                        images)
    return {'data': _scale(images), 'label': labels}


def _check_class_sizes(config: ml_collections.ConfigDict, source) -> None:
  """A conditional model needs every class of an image folder to fill a batch, or its few
  images would be shown over and over; raises UserError naming the smallest class."""
  counts = getattr(source, 'class_counts', ())  # folders with folder_labels have them
  batch_size = growth.largest_batch_size(config)
  if not (config.model.conditional and counts) or min(counts) >= batch_size:
    return
  names = data.info(config).class_names
  smallest = int(np.argmin(counts))
  raise UserError(f'Class {names[smallest]!r} of {config.data.path} has {counts[smallest]} '
                  f'images, fewer than a batch of {batch_size}: add images to it, merge '
                  f'it into another class, or lower {_batch_size_field(config)}.')


def _batch_size_field(config: ml_collections.ConfigDict) -> str:
  """The config field that sets the run's largest batch, for error messages."""
  return 'config.growth.batch_sizes' if config.growth.batch_sizes else 'config.batch_size'



class _StageBatches:
  """The n_critic global batches of update `step` + 1 of a growing model with a batch per
  stage (config.growth.batch_sizes), this host's rows of them: the next images of the
  shuffled stream `order` after those shown before (growth.images_before), so a resumed run
  continues it. With one batch for every stage, they are the batches `_image_batches` cuts.

  A class rather than a closure so that grain can send it to its worker processes.
  """

  def __init__(self, config: ml_collections.ConfigDict, order: grain.MapDataset,
               reads: list[_HostRows]):
    self._config, self._order, self._reads = config, order, reads
    self._side = data_shape(config)[0]

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    stage = growth.stage_at(self._config, step, self._side)
    size, n_critic = growth.batch_size(self._config, stage), self._config.n_critic
    first = growth.images_before(self._config, step, self._side)
    batches = [self._reads[stage](step * n_critic + i, np.array(
        [self._order[first + i * size + j] for j in range(size)])) for i in range(n_critic)]
    return {name: np.stack([batch[name] for batch in batches]) for name in batches[0]}


def _image_batches(config: ml_collections.ConfigDict, process_index: int,
                   process_count: int) -> tuple[grain.MapDataset, bool]:
  """This host's image rows of each update's n_critic global batches, and whether they are
  read from memory."""
  source, _ = data.load(config, 'train')
  count = _training_count(config, 'train', len(source))
  largest = growth.largest_batch_size(config)
  if count < largest:
    raise UserError(f'{count} training images cannot fill a batch of {largest}; lower '
                    f'{_batch_size_field(config)} or raise config.data.num_examples.')
  _check_class_sizes(config, source)
  fitted_bytes = count * int(np.prod(data_shape(config)))
  in_memory = fitted_bytes <= config.data.cache_in_memory_mb * 2**20
  examples = load_examples(config) if in_memory else None

  def reader(batch_size):  # of this host's rows of global batches of `batch_size`
    rows = _host_rows(batch_size, process_index, process_count)
    return _HostRows(config, rows, batch_size, source=None if in_memory else source,
                     in_memory=examples)

  order = grain.MapDataset.range(count).shuffle(seed=config.seed).repeat()  # reshuffled every epoch
  if config.growth.batch_sizes:
    reads = [reader(size) for size in config.growth.batch_sizes]
    return grain.MapDataset.range(sys.maxsize).map(_StageBatches(config, order, reads)), in_memory
  # Every batch() drops remainders although the stream is endless: grain computes a
  # batched length in floating point otherwise, which overflows for sys.maxsize.
  batches = (order.batch(config.batch_size, drop_remainder=True)
             .map_with_index(reader(config.batch_size)))
  return batches.batch(config.n_critic, drop_remainder=True), in_memory


def _host_rows(batch_size: int, process_index: int, process_count: int) -> slice:
  """This host's rows of a global batch."""
  host_batch_size = batch_size // process_count
  return slice(process_index * host_batch_size, (process_index + 1) * host_batch_size)


def _let_grain_start_workers_without_parsed_flags() -> None:
  """Lets grain start worker processes where absl has parsed no flags: tests and notebooks
  call train_and_evaluate without gan_jax.main's app.run.

  grain (0.2.18) reads its worker-profiling flag as it starts workers, and absl refuses to
  give an unparsed flag's value (UnparsedFlagAccessError; google/grain#1355, fixed upstream
  but not in 0.2.18). Marking that one flag as given keeps its default, as grain itself does for its
  debug flags in the workers; a later parse of the command line still sets it.
  """
  if not flags.FLAGS.is_parsed() and _GRAIN_WORKER_PROFILING in flags.FLAGS:
    flags.FLAGS[_GRAIN_WORKER_PROFILING].present = True


def create_dataset(config: ml_collections.ConfigDict, process_index: int = 0,
                   process_count: int = 1, start_step: int = 0) -> grain.IterDataset:
  """Returns this host's endless stream of training data for one generator step each.

  Args:
    config: reads dataset, data.*, batch_size (global), n_critic, seed and, for a growing
      model with a batch per stage, growth.*.
    process_index: this host's index, `jax.process_index()`.
    process_count: the number of hosts, `jax.process_count()`.
    start_step: the generator steps already trained: the stream starts with the next one's
      data. So a resumed run needs no saved data position, only its step.
  Returns:
    A dataset of batches {'data': float32 [n_critic, batch_size // process_count, *shape],
    'label': int32 [n_critic, batch_size // process_count]}: this host's rows of the global
    batches (of the update's stage's batch size, growth.batch_size).
  """
  if config.batch_size % process_count:
    raise UserError(f'config.batch_size={config.batch_size} does not divide over '
                    f'{process_count} hosts; use a multiple of {process_count}.')
  in_memory = True
  if data.is_toy(config.dataset):
    rows = _host_rows(config.batch_size, process_index, process_count)
    centers, std = toy_modes(config.dataset)
    draw = functools.partial(_toy_batch, centers=centers, std=std, seed=config.seed,
                             batch_size=config.batch_size)
    updates = (grain.MapDataset.range(sys.maxsize)
               .map(lambda index: {name: values[rows] for name, values in draw(index).items()})
               .batch(config.n_critic, drop_remainder=True))
  else:
    updates, in_memory = _image_batches(config, process_index, process_count)
  ds = updates[start_step:].to_iter_dataset(
      grain.ReadOptions(num_threads=config.data.num_threads,
                        prefetch_buffer_size=config.data.prefetch))
  if config.data.workers and not in_memory:
    _let_grain_start_workers_without_parsed_flags()
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=config.data.workers))
  return ds
