"""The images of a folder or a .zip, found from their names and sizes alone: what
data.folder converts, with what its fingerprint hashes.

Conventions as torchvision's ImageFolder and StyleGAN2-ADA's dataset_tool: files are found
recursively, hidden files and macOS's leftovers skipped; with folder_labels the first-level
subfolders are the classes, sorted by name.
"""
import contextlib
import dataclasses
import os
import zipfile
from typing import Any, Iterator

from gan_jax.errors import UserError

IMAGE_EXTENSIONS = ('.jpeg', '.jpg', '.png', '.webp')
KINDS = 'PNG, JPEG or WebP'


@dataclasses.dataclass(frozen=True)
class Listing:
  """The candidate images of a folder or zip, found from names and sizes alone."""
  path: str  # absolute
  is_zip: bool
  prefix: str  # the zip's one top-level folder that holds every image ('' if none)
  files: tuple[str, ...]  # '/'-separated paths relative to the folder, in reading order
  labels: tuple[int, ...]  # per file; all 0 without folder_labels
  class_names: tuple[str, ...]  # () without folder_labels
  stamps: tuple[Any, ...]  # what the fingerprint hashes: sizes, mtimes, CRCs
  others: tuple[str, ...]  # files that are not PNG, JPEG or WebP by their extension

  def opened_zip(self):
    """A context giving the open zip file, or None for a folder."""
    return zipfile.ZipFile(self.path) if self.is_zip else contextlib.nullcontext()

  def open(self, archive: zipfile.ZipFile | None, file: str):
    """Opens image `file` for binary reading (`archive`: from `opened_zip`)."""
    if archive:
      return archive.open(self.prefix + file)
    return open(os.path.join(self.path, *file.split('/')), 'rb')


def _is_hidden(relative_path: str) -> bool:
  """True for system leftovers: names starting with '.' (.DS_Store, macOS's ._x.png
  resource forks, .ipynb_checkpoints/) and the __MACOSX/ folder of macOS's zips."""
  return any(part.startswith('.') or part == '__MACOSX' for part in relative_path.split('/'))


def _walk_folder(root: str) -> Iterator[tuple[str, os.stat_result]]:
  """Yields (relative path, stat) of every file under `root`, following linked folders once."""
  seen = set()
  for folder, subfolders, files in os.walk(root, followlinks=True):
    real = os.path.realpath(folder)
    if real in seen:  # a link back up the tree
      subfolders[:] = []
      continue
    seen.add(real)
    relative = os.path.relpath(folder, root).replace(os.sep, '/')
    for name in files:
      path = name if relative == '.' else f'{relative}/{name}'
      try:
        yield path, os.stat(os.path.join(folder, name))
      except OSError:  # a broken link: not an image, and not worth failing over
        continue


def list_source(path: str, folder_labels: bool) -> Listing:
  """Lists the candidate images of folder or zip `path`, in sorted path order.

  Raises a UserError for a path that is missing, neither folder nor zip, empty, without
  images, or (with folder_labels) with images outside class subfolders.
  """
  if not path:
    raise UserError('No images to read: set --config.data.path to a folder or a .zip of '
                    f'{KINDS} images.')
  if not os.path.exists(path):
    raise UserError(f'--config.data.path={path} does not exist: point it at a folder or a '
                    f'.zip of {KINDS} images.')
  path = os.path.abspath(path)
  is_zip = not os.path.isdir(path)
  if not is_zip:
    entries = {p: (s.st_size, s.st_mtime_ns) for p, s in _walk_folder(path) if not _is_hidden(p)}
    prefix, stamp = '', ()
  elif zipfile.is_zipfile(path):
    with zipfile.ZipFile(path) as archive:
      entries = {m.filename: (m.file_size, m.CRC) for m in archive.infolist()
                 if not m.is_dir() and not _is_hidden(m.filename)}
    images = [p for p in entries if p.lower().endswith(IMAGE_EXTENSIONS)]
    tops = {p.split('/')[0] if '/' in p else '' for p in images}
    # `zip -r data.zip data/` wraps the images in one folder: read the zip as that folder.
    prefix = tops.pop() + '/' if len(tops) == 1 and '' not in tops else ''
    entries = {p[len(prefix):]: v for p, v in entries.items() if p.startswith(prefix)}
    stat = os.stat(path)
    stamp = (stat.st_size, stat.st_mtime_ns)
  else:
    raise UserError(f'--config.data.path={path} is neither a folder nor a .zip file: point it '
                    f'at a folder or a .zip of {KINDS} images.')
  what = 'zip' if is_zip else 'folder'
  if not entries:
    raise UserError(f'The {what} {path} is empty: put {KINDS} images in it'
                    + (', in one subfolder per class.' if folder_labels else '.'))
  files = sorted((p for p in entries if p.lower().endswith(IMAGE_EXTENSIONS)),
                 key=lambda p: p.split('/'))
  others = tuple(sorted(p for p in entries if not p.lower().endswith(IMAGE_EXTENSIONS)))
  if not files:
    raise UserError(f'The {what} {path} holds no {KINDS} images, only {len(others)} other '
                    f'files (e.g. {others[0]}): convert them, or point --config.data.path at '
                    'the images.')
  labels, class_names = (0,) * len(files), ()
  if folder_labels:
    loose = [f for f in files if '/' not in f]
    if loose:
      raise UserError(f'--config.data.folder_labels=True takes the classes from the subfolders '
                      f'of {path}, but {len(loose)} images lie directly in it (e.g. '
                      f'{loose[0]}): move them into one subfolder per class, or set '
                      '--config.data.folder_labels=False.')
    class_names = tuple(sorted({f.split('/')[0] for f in files}))
    index = {name: i for i, name in enumerate(class_names)}
    labels = tuple(index[f.split('/')[0]] for f in files)
  return Listing(path=path, is_zip=is_zip, prefix=prefix, files=tuple(files),
                  labels=labels, class_names=class_names,
                  stamps=stamp + tuple(entries[f] for f in files), others=others)
