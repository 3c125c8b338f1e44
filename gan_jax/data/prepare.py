"""Preparing a tfds data set once, with one log line of ours instead of tfds's output.

tfds prints "Downloading and preparing dataset Unknown size (download: Unknown size, ...)"
to stdout even when the data come from local files, and its tqdm progress bars write
cursor codes (`ESC[A`) into a log that is redirected to a file. `prepare` says instead
what is prepared from where, once, and shows tfds's progress bars only on a terminal.
Every tfds builder of gan_jax goes through it (the IDX files of idx.py; others later).
"""
import contextlib
import io
import sys
from typing import Any, Iterator

from absl import logging
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import tqdm_utils


def _is_terminal(stream: Any) -> bool:
  isatty = getattr(stream, 'isatty', None)
  try:
    return bool(isatty and isatty())
  except ValueError:  # a closed stream
    return False


@contextlib.contextmanager
def quiet_preparation() -> Iterator[None]:
  """Inside the block, tfds prints nothing and shows progress bars only if stderr is a terminal.

  What tfds prints (its "Downloading and preparing ..." and "... Subsequent calls will reuse
  this data.") is kept for `-v 1` (absl's verbosity) instead. tfds has a switch for its bars
  but none for these lines: stdout is redirected while the block runs, so a print of another
  thread meanwhile goes to the same place.
  """
  # tfds offers tfds.display_progress_bar(enable) but no way to read the setting back.
  bars_were_on = getattr(tqdm_utils, '_active', True)
  tfds.display_progress_bar(bars_were_on and _is_terminal(sys.stderr))
  printed = io.StringIO()
  try:
    with contextlib.redirect_stdout(printed):
      yield
  finally:
    tfds.display_progress_bar(bars_were_on)
    for line in printed.getvalue().splitlines():
      if line.strip():
        logging.vlog(1, 'tfds: %s', line.strip())


def prepare(builder: tfds.core.DatasetBuilder, description: str, **options: Any) -> None:
  """Prepares `builder`'s data set unless it is already, saying so in one log line.

  Args:
    builder: any tfds builder, e.g. idx.IdxImages or one from tfds's catalog.
    description: what is prepared from where, e.g. 'fashion_mnist from
      /usr/share/datasets/fashion-mnist': the line reads 'Preparing <description> (once,
      into <the builder's data_dir>)'.
    **options: passed on to `builder.download_and_prepare` (download_config, file_format).
  """
  if builder.data_path.exists():  # tfds's own test (is_prepared() warns of a missing folder)
    return
  logging.info('Preparing %s (once, into %s)', description, builder.data_dir)
  with quiet_preparation():
    builder.download_and_prepare(**options)
