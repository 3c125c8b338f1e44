"""Workdir files, local or in a Cloud Storage bucket: the one layer every gan_jax file goes through.

`--workdir gs://bucket/run` works as a local folder does. Paths are `etils.epath` paths,
which reach gs:// through fsspec's gcsfs (`pip install 'gan_jax[gcs]'`); no TensorFlow.
Orbax writes the checkpoints into the bucket by itself (tensorstore's GCS driver), so
gs:// is the one kind of URL a workdir can be: orbax knows no other object store.

A bucket differs from a disk in two ways that matter here: an object is uploaded whole
(readers see the old object or the new one, never half of one) but cannot be appended to,
and a bucket has no folders (writing an object needs no parent). `write_atomically` and
`open_append` give both kinds of storage the same meaning.
"""
import io
import json
import os
import threading
import time
from typing import BinaryIO, Callable
import uuid

from etils import epath
import fsspec

from gan_jax.errors import UserError

BUCKET_SCHEME = 'gs'
# A bucket takes about one write per second per object; metrics are uploaded at most this often.
UPLOAD_EVERY_SECONDS = 15.0


def path(location: str | os.PathLike) -> epath.Path:
  """`location` as a path: a local one, made absolute (orbax needs that), or a gs:// URL.

  Raises:
    UserError: for another kind of URL, or a gs:// one when no filesystem for it is installed.
  """
  location = os.fspath(location)
  scheme, is_url, _ = location.partition('://')
  if not is_url:
    return epath.Path(os.path.abspath(location))
  if scheme != BUCKET_SCHEME:
    raise UserError(f'{location}: a workdir is a local path or a gs:// URL; orbax writes '
                    f'checkpoints to no other storage.')
  try:
    fsspec.get_filesystem_class(scheme)
  except ImportError as e:
    raise UserError(f'{location} needs the Cloud Storage filesystem ({e}): pip install '
                    "'gan_jax[gcs]' (or gcsfs).") from e
  return epath.Path(location)


def in_bucket(location: str | os.PathLike) -> bool:
  """Whether `location` is a gs:// URL rather than a local path."""
  return os.fspath(location).startswith(f'{BUCKET_SCHEME}://')


def write_atomically(location: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
  """Calls write(file) so that readers (TensorBoard, a browser, a resumed run) never see half
  a file, creating the parent folders.

  Locally: into a temporary file beside it, then renamed. In a bucket: into memory, then
  uploaded whole (an upload cut short by an error in `write` would publish half a file).
  """
  target = path(location)
  if in_bucket(target):
    buffer = io.BytesIO()
    write(buffer)
    target.write_bytes(buffer.getvalue())
    return
  target.parent.mkdir(parents=True, exist_ok=True)
  # In the same folder, so the rename is atomic; opened as open() does, it gets the usual
  # permissions (0666 less the umask).
  temporary = target.with_name(f'{target.name}.{uuid.uuid4().hex[:8]}.tmp')
  try:
    with temporary.open('wb') as f:
      write(f)
    temporary.replace(target)
  except BaseException:
    temporary.unlink(missing_ok=True)
    raise


class _BucketAppender:
  """Appending to an object: its bytes are read once, kept and uploaded whole.

  `flush` uploads what was written when the last upload is UPLOAD_EVERY_SECONDS old, `close`
  always: as tensorboardX's and TensorFlow's own GCS files do, without their upload per flush.
  Thread-safe, since tensorboardX writes and flushes from its own thread.
  """

  def __init__(self, target: epath.Path):
    self._path = target
    self._data = bytearray(target.read_bytes() if target.exists() else b'')
    self._pending = False
    self._uploaded_at = -float('inf')
    self._lock = threading.Lock()

  def write(self, data: bytes) -> int:
    with self._lock:
      self._data += data
      self._pending = True
    return len(data)

  def flush(self, force: bool = False) -> None:
    with self._lock:
      if self._pending and (force or time.monotonic() - self._uploaded_at >= UPLOAD_EVERY_SECONDS):
        self._path.write_bytes(bytes(self._data))
        self._pending, self._uploaded_at = False, time.monotonic()

  def close(self) -> None:
    self.flush(force=True)

  def __enter__(self) -> '_BucketAppender':
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


def open_append(location: str | os.PathLike) -> BinaryIO | _BucketAppender:
  """Opens a file for appending bytes (`write`, `flush`, `close`, `with`), creating its folders.

  A local file is appended to and flushed as usual; one in a bucket is uploaded whole on
  `close` and, at most every UPLOAD_EVERY_SECONDS, on `flush`.
  """
  target = path(location)
  if in_bucket(target):
    return _BucketAppender(target)
  target.parent.mkdir(parents=True, exist_ok=True)
  return target.open('ab')


def read_jsonl(location: str | os.PathLike) -> list[dict]:
  """The JSON objects of a JSON-lines file ([] when it does not exist), one per line.

  A line that is not JSON (the last one, cut short while a run writes it) is left out.
  """
  target = path(location)
  rows = []
  for line in target.read_text().splitlines() if target.exists() else []:
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError:
      continue
  return rows
