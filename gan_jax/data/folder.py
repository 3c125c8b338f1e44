"""A researcher's own images: PNG, JPEG and WebP files in a folder or a .zip, at any size.

The first load converts the images ONCE into an array_record copy in tfds's data_dir (each
image centre-cropped, resized and given its channels, then stored as a lossless PNG);
training then reads that copy by random access and only decodes small PNGs, so a large set
never sits in memory. The copy lives in

  <data_dir>/image_folder/<name>-<fingerprint>/1.0.0/

where the fingerprint hashes the source (its images' relative paths, sizes and mtimes; for
a zip its size, mtime and members) and the settings that shape the copy. A source that
changes, or other settings, get a new copy; the same ones reuse the old copy.

data.listing finds the images and their classes, as torchvision's ImageFolder does.
"""
import concurrent.futures
import dataclasses
import hashlib
import io
import json
import os
import re
import zipfile
from typing import Any, Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from etils import epath
from PIL import Image, ImageOps, UnidentifiedImageError

from gan_jax.data import DatasetInfo, prepare, transform
from gan_jax.data.listing import KINDS, Listing, list_source
from gan_jax.errors import UserError, unknown_name_error

# PIL modes without colour; every other mode (RGB, RGBA, P, CMYK, ...) counts as colour.
_GREY_MODES = frozenset({'1', 'L', 'LA', 'La', 'I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F'})
# Examples converted per batch of the thread pool: bounds the PNGs waiting for the writer.
_CHUNK = 256


def _cache_name(listing: Listing, settings: dict[str, Any]) -> str:
  """The cache's name: the source's base name, then a hash of its listing and `settings`."""
  content = json.dumps([listing.is_zip, listing.prefix, listing.files, listing.stamps,
                        sorted(settings.items())])
  base = os.path.basename(listing.path)
  base = re.sub(r'[^A-Za-z0-9_-]+', '_', os.path.splitext(base)[0] if listing.is_zip else base)
  return f'{base[:40]}-{hashlib.sha256(content.encode()).hexdigest()[:16]}'


def _why_unreadable(error: Exception) -> str:
  """A short reason for PIL's `error`; UnidentifiedImageError's message repeats the path."""
  if isinstance(error, UnidentifiedImageError):
    return 'PIL does not recognise its content'
  return str(error) or type(error).__name__


def _scan_headers(listing: Listing) -> tuple[dict[str, tuple[int, int]], bool, dict[str, str]]:
  """Reads every image's header (not its pixels).

  Returns:
    {file: (width, height)} of the files PIL can open, in order; whether any of them is
    colour; {file: why} of the files it cannot open.
  """
  sizes, colour, unreadable = {}, False, {}
  with listing.opened_zip() as archive:
    for file in listing.files:
      try:
        with listing.open(archive, file) as f, Image.open(f) as image:
          sizes[file] = image.size
          colour |= image.mode not in _GREY_MODES
      except Exception as e:  # pylint: disable=broad-except
        # PIL fails in many ways (UnidentifiedImageError, SyntaxError, ValueError, ...).
        unreadable[file] = _why_unreadable(e)
  return sizes, colour, unreadable


def _common_side(path: str, sizes: dict[str, tuple[int, int]], crop: str) -> int:
  """The side all images share (after a centre crop), or a UserError saying to set one."""
  if crop == 'none':
    for file, (width, height) in sizes.items():
      if width != height:
        raise UserError(f'{file} in {path} is {width}x{height}, not square: set '
                        '--config.data.crop=center, or --config.data.image_size to stretch '
                        'every image to that square.')
  sides = {file: min(size) for file, size in sizes.items()}
  first, side = next(iter(sides.items()))
  for file, other in sides.items():
    if other != side:
      raise UserError(f'The images in {path} have different sizes ({first}: {side}x{side}, '
                      f'{file}: {other}x{other} after the crop): set '
                      '--config.data.image_size to resize them all.')
  return side


@dataclasses.dataclass(frozen=True)
class _Plan:
  """What one conversion writes: which files, at what shape."""
  listing: Listing
  unreadable: dict[str, str]  # {file: why} for the files whose header PIL cannot read
  shape: tuple[int, int, int]
  crop: str


def _plan_conversion(listing: Listing, image_size: int, channels: int, crop: str) -> _Plan:
  """Reads the headers and settles the training shape; raises a UserError before any write."""
  sizes, colour, unreadable = _scan_headers(listing)
  if not sizes:
    first = listing.files[0]
    raise UserError(f'None of the {len(listing.files)} image files in {listing.path} could be '
                    f'read (e.g. {first}: {unreadable[first]}): check that they open in an '
                    'image viewer.')
  side = image_size or _common_side(listing.path, sizes, crop)
  return _Plan(listing=listing, unreadable=unreadable, crop=crop,
               shape=(side, side, channels or (3 if colour else 1)))


def _decode_upright(data: bytes) -> np.ndarray:
  """Decodes an image file to uint8 [H, W, 1 or 3], turned as its EXIF orientation says."""
  with Image.open(io.BytesIO(data)) as image:
    image = ImageOps.exif_transpose(image)  # phone photos: upright, as viewers show them
    if image.mode in ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N'):  # 16-bit grey PNGs
      pixels = (np.asarray(image, np.uint32) >> 8).astype(np.uint8)  # convert('L') clips
    elif image.mode in _GREY_MODES:
      pixels = np.asarray(image.convert('L'))
    else:  # an alpha channel is dropped, as transform.fit_image does
      pixels = np.asarray(image if image.mode == 'RGB' else image.convert('RGB'))
  return pixels[..., None] if pixels.ndim == 2 else pixels


def _encode_png(image: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format='PNG')
  return buffer.getvalue()


class ImageFolder(tfds.core.GeneratorBasedBuilder):
  """Writes the array_record copy of one folder or zip; its config name is the cache name.

  Only for writing: reading goes through `tfds.builder_from_directory`, which needs no plan.
  """
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  code_path = None  # no checksums file beside this code (see idx.IdxImages)

  def __init__(self, *, plan: _Plan, **kwargs):
    self._plan = plan
    super().__init__(file_format='array_record', **kwargs)

  @classmethod
  def get_builder_config(cls, name, version=None):
    # Every name is a fingerprint, so no list of configs exists up front; answering here
    # keeps tfds from warning "Using custom data configuration" on each load.
    del version
    return tfds.core.BuilderConfig(name=name)

  def _info(self) -> tfds.core.DatasetInfo:
    plan = self._plan
    classes = plan.listing.class_names
    return tfds.core.DatasetInfo(
        builder=self,
        description=f'The images of {plan.listing.path}, {"x".join(map(str, plan.shape))}.',
        features=tfds.features.FeaturesDict({
            # PNG bytes we encode with PIL: tfds encodes numpy arrays with TensorFlow.
            'image': tfds.features.Image(shape=plan.shape, encoding_format='png'),
            'label': tfds.features.ClassLabel(names=classes) if classes
                     else tfds.features.ClassLabel(num_classes=1),
        }),
        disable_shuffling=True,  # record i is the i-th image in path order
        metadata=tfds.core.MetadataDict(source=plan.listing.path,
                                        folder_labels=bool(classes), crop=plan.crop),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # nothing to download
    others = self._plan.listing.others
    if others:
      logging.info('Ignoring files that are not %s: %d (e.g. %s).', KINDS, len(others),
                   others[0])
    return {'train': self._generate_examples()}

  def _convert(self, archive: zipfile.ZipFile | None, file: str) -> bytes | str:
    """Returns `file` as training-shaped PNG bytes, or why it cannot be read."""
    plan = self._plan
    if file in plan.unreadable:
      return plan.unreadable[file]
    try:
      with plan.listing.open(archive, file) as f:
        image = _decode_upright(f.read())
    except Exception as e:  # pylint: disable=broad-except
      return _why_unreadable(e)  # e.g. a truncated PNG or JPEG
    size, _, channels = plan.shape
    return _encode_png(transform.fit_image(image, size, channels, plan.crop))

  def _generate_examples(self):
    listing = self._plan.listing
    counts, skipped = [0] * max(1, len(listing.class_names)), 0
    # PIL decodes, resizes and encodes without holding the GIL: threads use every core.
    with (listing.opened_zip() as archive,
          concurrent.futures.ThreadPoolExecutor(min(32, os.cpu_count() or 1)) as pool):
      for start in range(0, len(listing.files), _CHUNK):
        chunk = range(start, min(start + _CHUNK, len(listing.files)))
        pngs = pool.map(lambda i: self._convert(archive, listing.files[i]), chunk)
        for index, png in zip(chunk, pngs):
          if isinstance(png, str):
            logging.warning('Skipping %s: not a readable image (%s).', listing.files[index], png)
            skipped += 1
            continue
          counts[listing.labels[index]] += 1
          yield listing.files[index], {'image': png, 'label': listing.labels[index]}
    if skipped:
      logging.warning('Skipped %d of %d files that are not readable images.', skipped,
                      len(listing.files))
    if not sum(counts):  # raised inside tfds's writer, which then deletes its partial copy
      raise UserError(f'None of the {len(listing.files)} image files in {listing.path} could '
                      'be read: check that they open in an image viewer.')
    # Written to metadata.json with the rest of the info once this generator ends.
    self.info.metadata.update(class_counts=counts, num_skipped=skipped)


@dataclasses.dataclass(frozen=True)
class FolderSource:
  """Random access to the converted images: {'image': uint8 [S, S, C], 'label': int}.

  Attributes:
    records: tfds's data source of the copy, its images left as PNG bytes.
    class_counts: images per class, indexed by label; () without folder_labels. Callers
      check that every class fills a batch.
    cache_dir: the copy's folder.
  """
  records: Sequence[dict[str, Any]]
  class_counts: tuple[int, ...]
  cache_dir: str

  def __len__(self) -> int:
    return len(self.records)

  @staticmethod
  def _decode(record: dict[str, Any]) -> dict[str, Any]:
    # PIL, not tfds's decoder, which warns on every first read that OpenCV is missing.
    with Image.open(io.BytesIO(record['image'])) as image:
      pixels = np.asarray(image)
    return {'image': pixels[..., None] if pixels.ndim == 2 else pixels,
            'label': int(record['label'])}

  def __getitem__(self, index: int) -> dict[str, Any]:
    return self._decode(self.records[index])

  def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
    return [self._decode(record) for record in self.records.__getitems__(list(indices))]

  def __iter__(self) -> Iterator[dict[str, Any]]:
    return (self[i] for i in range(len(self)))


def load(path: str, *, data_dir: str = '', image_size: int = 0, channels: int = 0,
         crop: str = 'center', folder_labels: bool = False) -> tuple[FolderSource, DatasetInfo]:
  """Converts the images of a folder or zip once, then returns random access to them.

  Args:
    path: a folder or .zip of PNG, JPEG and WebP files, searched recursively. Files with
      other extensions are ignored (and counted in the preparation's log); hidden files and
      __MACOSX/ are ignored silently. A zip whose images all lie in one top-level folder is
      read as that folder.
    data_dir: where tfds keeps prepared data sets; '' for tfds's default.
    image_size: the side S of the square training images; 0 keeps the images' own, which
      must then be one side for all (after the crop).
    channels: 1 (grey) or 3 (RGB); 0 for 3 if any image is colour, else 1.
    crop: 'center' cuts the largest centred square first; 'none' stretches.
    folder_labels: the first-level subfolders are the classes, labels 0..K-1 in name order.
  Returns:
    The source, whose examples are in sorted path order, and its DatasetInfo (shape
    (S, S, C), kind 'image', num_classes K or 0, class_names).
  """
  if crop not in transform.CROPS:
    raise unknown_name_error('crop', crop, transform.CROPS)
  if channels not in (0, 1, 3):
    raise UserError(f'--config.data.channels={channels}: use 1 (grey), 3 (RGB) or 0 (RGB '
                    'if any image is colour).')
  if image_size < 0:
    raise UserError(f'--config.data.image_size={image_size}: use a side in pixels, or 0 '
                    "for the images' own.")
  listing = list_source(path, folder_labels)
  name = _cache_name(listing, dict(image_size=image_size, channels=channels, crop=crop,
                                   folder_labels=folder_labels))
  root = epath.Path(data_dir or tfds.core.constants.DATA_DIR)
  cache_dir = root / 'image_folder' / name / str(ImageFolder.VERSION)
  # tfds writes into a temporary folder and renames it when done: this file means complete.
  if (cache_dir / 'dataset_info.json').exists():
    logging.info('Reading image_folder %s from its copy in %s.', listing.path, cache_dir)
  else:
    plan = _plan_conversion(listing, image_size, channels, crop)
    classes = f' in {len(listing.class_names)} classes' if folder_labels else ''
    prepare.prepare(ImageFolder(plan=plan, config=name, data_dir=os.fspath(root)),
                    f'image_folder from {listing.path}: {len(listing.files)} image files'
                    f'{classes} -> {"x".join(map(str, plan.shape))}')
  builder = tfds.builder_from_directory(os.fspath(cache_dir))
  features, metadata = builder.info.features, builder.info.metadata
  class_names = tuple(features['label'].names) if metadata['folder_labels'] else ()
  source = FolderSource(
      records=builder.as_data_source('train', decoders={'image': tfds.decode.SkipDecoding()}),
      class_counts=tuple(metadata['class_counts']) if class_names else (),
      cache_dir=os.fspath(cache_dir))
  info = DatasetInfo(shape=tuple(features['image'].shape), kind='image',
                     num_classes=len(class_names), class_names=class_names)
  return source, info
