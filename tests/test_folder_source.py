"""Tests of gan_jax.data.folder: a researcher's own images, from a folder or a zip, converted
once into an array_record copy. Tiny images written here with PIL; never touches the network."""
import io
import logging
import os
import pickle
import zipfile

import grain
import numpy as np
import pytest
from PIL import Image

from gan_jax.data import DatasetInfo, folder
from gan_jax.errors import UserError

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def _save(path, pixels, **options):
  """Writes uint8 `pixels` ([H, W] grey or [H, W, 3] RGB) as the image file `path`."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.asarray(pixels, np.uint8)).save(path, **options)


def _solid(colour, height=8, width=8):
  """An image of one colour: an int for grey, an (r, g, b) tuple for RGB."""
  shape = (height, width) if isinstance(colour, int) else (height, width, 3)
  return np.broadcast_to(np.asarray(colour, np.uint8), shape)


def _thirds(colours, height, width, axis):
  """An image cut into three equal bands along `axis` (1: left to right, 0: top to bottom)."""
  bands = [_solid(c, height // 3 if axis == 0 else height, width // 3 if axis == 1 else width)
           for c in colours]
  return np.concatenate(bands, axis=axis)


def _truncated_png(path):
  """A PNG whose header reads but whose pixel data is cut off halfway."""
  buffer = io.BytesIO()
  noise = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
  Image.fromarray(noise).save(buffer, format='PNG')
  with open(path, 'wb') as f:
    f.write(buffer.getvalue()[:len(buffer.getvalue()) // 2])


# The files of `pets` that hold images, in reading order (sorted path components), with their
# colour after conversion to RGB (tall and wide: their middle third); only JPEG is lossy.
PETS = (
    [(f'cats/c{i}.png', (20 * i, 0, 0)) for i in range(10)]
    + [('cats/deep/er/c.webp', (0, 0, 200)), ('cats/photo.jpg', (0, 120, 0))]
    + [(f'dogs/d{i}.png', (20 * i, 20 * i, 20 * i)) for i in range(10)]  # grey PNGs
    + [('dogs/tall.png', GREEN), ('dogs/wide.png', GREEN)]
)


@pytest.fixture
def pets(tmp_path):
  """A folder of two classes: PNG, JPEG and WebP, grey and RGB, square and not, one level
  deeper, and four files that are no training image: a truncated PNG, a text named .jpg, a
  README and a hidden file."""
  root = str(tmp_path / 'pets')
  for name, colour in PETS:
    path = os.path.join(root, name)
    if name.endswith('.webp'):
      _save(path, _solid(colour), lossless=True)
    elif name.endswith('tall.png'):
      _save(path, _thirds([RED, GREEN, BLUE], 24, 8, axis=0))
    elif name.endswith('wide.png'):
      _save(path, _thirds([RED, GREEN, BLUE], 8, 24, axis=1))
    else:
      _save(path, _solid(colour[0] if name.startswith('dogs/d') else colour), quality=95)
  _truncated_png(os.path.join(root, 'dogs', 'broken.png'))
  with open(os.path.join(root, 'dogs', 'notes.jpg'), 'w') as f:
    f.write('not a photo')
  with open(os.path.join(root, 'README.txt'), 'w') as f:
    f.write('Pets, two classes.')
  with open(os.path.join(root, '.DS_Store'), 'wb') as f:
    f.write(b'\0Bud1')
  return root


def _examples(source):
  return [(example['image'], example['label']) for example in source]


def test_pets_load_with_labels_shapes_and_counts(pets, tmp_path):
  source, info = folder.load(pets, data_dir=str(tmp_path / 'tfds'), folder_labels=True)

  assert info == DatasetInfo(shape=(8, 8, 3), kind='image', num_classes=2,
                             class_names=('cats', 'dogs'))
  assert len(source) == len(PETS)  # broken.png and notes.jpg skipped
  assert source.class_counts == (12, 12)
  labels = [example['label'] for example in source]
  assert labels == [0] * 12 + [1] * 12
  for example in source:
    assert example['image'].dtype == np.uint8 and example['image'].shape == (8, 8, 3)
    assert isinstance(example['label'], int)


def test_examples_come_in_sorted_path_order_with_their_colours(pets, tmp_path):
  source, _ = folder.load(pets, data_dir=str(tmp_path / 'tfds'))

  for (name, colour), example in zip(PETS, source, strict=True):
    pixels = example['image']
    tolerance = 4 if name.endswith('.jpg') else 0  # JPEG, quality 95, of one colour
    np.testing.assert_allclose(pixels, np.broadcast_to(colour, pixels.shape), atol=tolerance,
                               err_msg=name)


def test_path_components_sort_before_characters(tmp_path):
  # As strings 'a b/...' < 'a/...' (' ' < '/') and 'img10' < 'img2'; by components 'a' < 'a b'.
  names = ['a/img10.png', 'a/img2.png', 'a b/img0.png', 'b.png']
  for value, name in enumerate(names):
    _save(str(tmp_path / 'images' / name), _solid(value))

  source, _ = folder.load(str(tmp_path / 'images'), data_dir=str(tmp_path / 'tfds'))

  assert [int(example['image'][0, 0, 0]) for example in source] == [0, 1, 2, 3]


def test_centre_crop_keeps_the_middle_third(tmp_path):
  _save(str(tmp_path / 'images' / 'tall.png'), _thirds([RED, GREEN, BLUE], 24, 8, axis=0))
  _save(str(tmp_path / 'images' / 'wide.png'), _thirds([RED, GREEN, BLUE], 8, 24, axis=1))

  source, info = folder.load(str(tmp_path / 'images'), data_dir=str(tmp_path / 'tfds'))

  assert info.shape == (8, 8, 3)
  for example in source:
    np.testing.assert_array_equal(example['image'], _solid(GREEN))


def test_resizes_to_image_size(pets, tmp_path):
  source, info = folder.load(pets, data_dir=str(tmp_path / 'tfds'), image_size=4)

  assert info.shape == (4, 4, 3)
  assert source[0]['image'].shape == (4, 4, 3)
  np.testing.assert_array_equal(source[len(source) - 1]['image'], _solid(GREEN, 4, 4))


def test_grey_becomes_rgb_and_rgb_becomes_grey(tmp_path):
  _save(str(tmp_path / 'images' / 'grey.png'), _solid(77))
  _save(str(tmp_path / 'images' / 'red.png'), _solid(RED))
  path, data_dir = str(tmp_path / 'images'), str(tmp_path / 'tfds')

  rgb, rgb_info = folder.load(path, data_dir=data_dir, channels=3)
  grey, grey_info = folder.load(path, data_dir=data_dir, channels=1)

  assert rgb_info.shape == (8, 8, 3) and grey_info.shape == (8, 8, 1)
  np.testing.assert_array_equal(rgb[0]['image'], _solid((77, 77, 77)))
  np.testing.assert_array_equal(rgb[1]['image'], _solid(RED))
  np.testing.assert_array_equal(grey[0]['image'], _solid(77)[..., None])
  # ITU-R 601 luma as PIL's 'L': 299/1000 * 255 = 76.2 for pure red.
  np.testing.assert_array_equal(grey[1]['image'], _solid(76)[..., None])


def test_channels_zero_is_rgb_if_any_image_is_colour(tmp_path):
  _save(str(tmp_path / 'grey' / 'a.png'), _solid(10))
  _save(str(tmp_path / 'grey' / 'b.png'), _solid(20))
  data_dir = str(tmp_path / 'tfds')

  _, grey_info = folder.load(str(tmp_path / 'grey'), data_dir=data_dir)
  _save(str(tmp_path / 'grey' / 'c.png'), _solid(BLUE))
  _, mixed_info = folder.load(str(tmp_path / 'grey'), data_dir=data_dir)

  assert grey_info.shape == (8, 8, 1) and mixed_info.shape == (8, 8, 3)


def test_without_folder_labels_there_are_no_classes(pets, tmp_path):
  source, info = folder.load(pets, data_dir=str(tmp_path / 'tfds'))

  assert (info.num_classes, info.class_names, source.class_counts) == (0, (), ())
  assert {example['label'] for example in source} == {0}


def _zip(folder_path, zip_path, wrap=''):
  """Zips the files of `folder_path`, under one top-level folder `wrap` if given."""
  with zipfile.ZipFile(zip_path, 'w') as archive:
    for parent, _, files in os.walk(folder_path):
      for name in files:
        path = os.path.join(parent, name)
        archive.write(path, os.path.join(wrap, os.path.relpath(path, folder_path)))
  return zip_path


@pytest.mark.parametrize('wrap', ['', 'pets'])  # make_archive's layout; `zip -r pets.zip pets/`
def test_a_zip_gives_the_same_examples_as_its_folder(pets, tmp_path, wrap):
  data_dir = str(tmp_path / 'tfds')
  from_folder, folder_info = folder.load(pets, data_dir=data_dir, folder_labels=True)
  zipped = _zip(pets, str(tmp_path / 'pets.zip'), wrap)

  from_zip, zip_info = folder.load(zipped, data_dir=data_dir, folder_labels=True)

  assert zip_info == folder_info
  assert from_zip.class_counts == from_folder.class_counts
  for (zip_image, zip_label), (image, label) in zip(_examples(from_zip), _examples(from_folder),
                                                    strict=True):
    np.testing.assert_array_equal(zip_image, image)
    assert zip_label == label


def test_reading_is_deterministic(pets, tmp_path):
  source, _ = folder.load(pets, data_dir=str(tmp_path / 'tfds'))

  batch = source.__getitems__([5, 0, 5, 23])

  for example, index in zip(batch, [5, 0, 5, 23], strict=True):
    np.testing.assert_array_equal(example['image'], source[index]['image'])


def test_the_source_pickles_for_grain_worker_processes(pets, tmp_path):
  source, _ = folder.load(pets, data_dir=str(tmp_path / 'tfds'))

  copy = pickle.loads(pickle.dumps(source))
  batch = next(iter(grain.MapDataset.source(copy).batch(4, batch_fn=list)))

  for example, original in zip(batch, source.__getitems__(range(4)), strict=True):
    np.testing.assert_array_equal(example['image'], original['image'])


class _Converted(Exception):
  """Raised by a patched conversion: the load tried to convert."""


def _forbid_conversion(monkeypatch):
  def convert(*args, **kwargs):
    raise _Converted
  monkeypatch.setattr(folder.ImageFolder, '_generate_examples', convert)


def test_the_cache_is_reused_and_rebuilt_when_the_folder_changes(pets, tmp_path, monkeypatch):
  data_dir = str(tmp_path / 'tfds')
  first, _ = folder.load(pets, data_dir=data_dir, folder_labels=True)
  _forbid_conversion(monkeypatch)

  again, info = folder.load(pets, data_dir=data_dir, folder_labels=True)
  assert again.cache_dir == first.cache_dir
  assert info.class_names == ('cats', 'dogs')  # from the copy's info
  assert again.class_counts == (12, 12)  # from the copy's metadata
  _save(os.path.join(pets, 'dogs', 'new.png'), _solid(5))
  with pytest.raises(_Converted):
    folder.load(pets, data_dir=data_dir, folder_labels=True)
  with pytest.raises(_Converted):  # other settings, another copy
    folder.load(pets, data_dir=data_dir, folder_labels=True, image_size=4)
  monkeypatch.undo()
  changed, _ = folder.load(pets, data_dir=data_dir, folder_labels=True)

  assert changed.cache_dir != first.cache_dir
  assert len(changed) == len(first) + 1 and changed.class_counts == (12, 13)


def test_a_zip_that_changes_gets_a_new_copy(pets, tmp_path):
  data_dir, zipped = str(tmp_path / 'tfds'), str(tmp_path / 'pets.zip')
  before, _ = folder.load(_zip(pets, zipped), data_dir=data_dir)
  _save(os.path.join(pets, 'cats', 'new.png'), _solid(5))

  after, _ = folder.load(_zip(pets, zipped), data_dir=data_dir)

  assert after.cache_dir != before.cache_dir and len(after) == len(before) + 1


def _prepared_copies(data_dir):
  """The folders under `data_dir` that tfds would take as prepared data sets."""
  return [parent for parent, _, files in os.walk(data_dir) if 'dataset_info.json' in files]


# A user stopping the conversion; a full disk.
@pytest.mark.parametrize('error', [KeyboardInterrupt, OSError])
def test_a_failed_conversion_leaves_no_copy_behind(pets, tmp_path, monkeypatch, error):
  data_dir = str(tmp_path / 'tfds')
  fit_image, calls = folder.transform.fit_image, []

  def fail_on_the_fifth(*args, **kwargs):
    calls.append(1)
    if len(calls) == 5:
      raise error
    return fit_image(*args, **kwargs)

  monkeypatch.setattr(folder.transform, 'fit_image', fail_on_the_fifth)
  with pytest.raises(error):
    folder.load(pets, data_dir=data_dir)
  assert not _prepared_copies(data_dir)
  assert not [name for _, folders, _ in os.walk(data_dir) for name in folders
              if 'incomplete' in name]
  monkeypatch.undo()

  source, _ = folder.load(pets, data_dir=data_dir)

  assert len(source) == len(PETS)


def test_images_whose_pixels_are_all_unreadable_leave_no_copy(tmp_path):
  os.makedirs(tmp_path / 'images')
  _truncated_png(str(tmp_path / 'images' / 'a.png'))  # its header reads: fails while converting
  data_dir = str(tmp_path / 'tfds')

  with pytest.raises(UserError, match=r'None of the 1 image files in .* could be read'):
    folder.load(str(tmp_path / 'images'), data_dir=data_dir)

  assert not _prepared_copies(data_dir)


def test_a_link_back_up_the_tree_is_followed_once(tmp_path):
  _save(str(tmp_path / 'images' / 'a' / 'x.png'), _solid(1))
  os.symlink(str(tmp_path / 'images'), str(tmp_path / 'images' / 'a' / 'loop'))

  source, _ = folder.load(str(tmp_path / 'images'), data_dir=str(tmp_path / 'tfds'))

  assert len(source) == 1


def test_unreadable_files_are_named_and_counted(pets, tmp_path, caplog):
  with caplog.at_level(logging.INFO):
    folder.load(pets, data_dir=str(tmp_path / 'tfds'))

  warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  assert len(warnings) == 3
  assert 'dogs/broken.png' in warnings[0] and 'not a readable image' in warnings[0]
  assert 'dogs/notes.jpg' in warnings[1] and 'not a readable image' in warnings[1]
  assert warnings[2] == (f'Skipped 2 of {len(PETS) + 2} files that are not readable images.')
  infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
  assert f'Preparing image_folder from {pets}: 26 image files -> 8x8x3 (once, into ' in (
      '\n'.join(infos))
  assert 'Ignoring files that are not PNG, JPEG or WebP: 1 (e.g. README.txt).' in infos
  assert not [m for m in infos + warnings if 'DS_Store' in m]  # hidden: ignored silently


def _write(path, text='x'):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(text)
  return path


def _bad_inputs(root):
  """{case: (path, load options, fragments its message must hold)}, made under `root`."""
  os.makedirs(os.path.join(root, 'empty'))
  _write(os.path.join(root, 'texts', 'README.txt'))
  _save(os.path.join(root, 'loose', 'a.png'), _solid(1))
  _save(os.path.join(root, 'loose', 'cats', 'b.png'), _solid(2))
  _save(os.path.join(root, 'sizes', 'a.png'), _solid(1, 8, 8))
  _save(os.path.join(root, 'sizes', 'b.png'), _solid(2, 16, 12))
  _save(os.path.join(root, 'oblong', 'a.png'), _solid(1, 8, 12))
  _write(os.path.join(root, 'unreadable', 'a.png'), 'not a png')
  _zip(os.path.join(root, 'texts'), os.path.join(root, 'texts.zip'))
  zipfile.ZipFile(os.path.join(root, 'empty.zip'), 'w').close()
  return {
      'missing': ('nowhere', {}, ['does not exist', '--config.data.path']),
      'unset': ('', {}, ['set --config.data.path']),
      'empty folder': ('empty', {}, ['is empty', 'put PNG, JPEG or WebP images']),
      'no images': ('texts', {}, ['holds no PNG, JPEG or WebP images', 'README.txt']),
      'not folder or zip': ('texts/README.txt', {}, ['neither a folder nor a .zip']),
      'empty zip': ('empty.zip', {}, ['zip', 'is empty']),
      'zip without images': ('texts.zip', {}, ['zip', 'holds no PNG, JPEG or WebP']),
      'loose images': ('loose', {'folder_labels': True},
                       ['lie directly in it', 'a.png', 'one subfolder per class',
                        '--config.data.folder_labels=False']),
      'different sizes': ('sizes', {}, ['different sizes', 'a.png: 8x8', 'b.png: 12x12',
                                        '--config.data.image_size']),
      'not square': ('oblong', {'crop': 'none'}, ['12x8, not square',
                                                  '--config.data.crop=center']),
      'unreadable': ('unreadable', {}, ['None of the 1 image files', 'a.png']),
      'crop': ('sizes', {'crop': 'centre'}, ["Unknown crop 'centre'", "'center'"]),
      'channels': ('sizes', {'channels': 2}, ['--config.data.channels=2', '1 (grey), 3']),
  }


@pytest.mark.parametrize('case', [
    'missing', 'unset', 'empty folder', 'no images', 'not folder or zip', 'empty zip',
    'zip without images', 'loose images', 'different sizes', 'not square', 'unreadable',
    'crop', 'channels'])
def test_a_bad_input_is_one_line_before_any_write(tmp_path, case):
  path, options, fragments = _bad_inputs(str(tmp_path))[case]
  data_dir = str(tmp_path / 'tfds')

  with pytest.raises(UserError) as error:
    folder.load(os.path.join(str(tmp_path), path) if path else '', data_dir=data_dir,
                **options)

  message = str(error.value)
  assert '\n' not in message
  for fragment in fragments:
    assert fragment in message
  assert not os.path.exists(data_dir)
