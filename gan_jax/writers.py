"""Metrics, images and progress: JSON lines, TensorBoard, PNG files and log lines.

`MetricWriter` has clu's metric-writer surface on top of tensorboardX, so this
package needs no TensorFlow.
"""
import contextlib
import json
import math
import os
import tempfile
import time
from typing import Callable, Iterator, Mapping
import uuid

from absl import logging
import numpy as np
from PIL import Image
from PIL import ImageDraw
import tensorboardX

_PAD = 2  # pixels between the tiles of an image grid
_PAD_VALUE = 255  # white lines separate the (mostly black) MNIST-like tiles


class MetricWriter:
  """Writes scalars to WORKDIR/metrics.jsonl, TensorBoard and the log; images to TensorBoard.

  Only one process should write: pass `enabled=jax.process_index() == 0`. A
  disabled writer touches no file and every method is a no-op.
  """

  def __init__(self, workdir: str, enabled: bool = True):
    self._enabled = enabled
    if not enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    # Append, so a resumed run continues the same file.
    self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a', encoding='utf-8')
    # tensorboardX names event files by the second and opens them with 'wb'; a
    # unique suffix keeps a quick restart in the same second from clobbering one.
    self._tb = tensorboardX.SummaryWriter(
        logdir=workdir, filename_suffix=f'.{uuid.uuid4().hex[:8]}')

  def write_scalars(self, step: int, scalars: Mapping[str, float | np.ndarray]):
    """Writes one JSON line `{"step": step, **scalars}`, TensorBoard scalars and a log line.

    Non-finite values become null in JSON (NaN is not valid JSON) and stay as
    they are in TensorBoard.
    """
    if not self._enabled:
      return
    step = int(step)
    values = {name: float(np.asarray(value).item()) for name, value in scalars.items()}
    record = {name: v if math.isfinite(v) else None for name, v in values.items()}
    self._jsonl.write(json.dumps({'step': step, **record}, allow_nan=False) + '\n')
    self._jsonl.flush()
    for name, value in values.items():
      self._tb.add_scalar(name, value, global_step=step)
    logging.info('[%d] %s', step, ' '.join(f'{k}={v:.4g}' for k, v in values.items()))

  def write_images(self, step: int, images: Mapping[str, np.ndarray]):
    """Writes HWC images, uint8 or float in [0, 1], to TensorBoard."""
    if not self._enabled:
      return
    for name, image in images.items():
      image = np.asarray(image)
      if image.dtype != np.uint8:
        # tensorboardX scales floats by 255 and casts: out-of-range values would wrap.
        image = np.clip(image.astype(np.float32), 0.0, 1.0)
      self._tb.add_image(name, image, global_step=int(step), dataformats='HWC')

  def flush(self):
    """Pushes pending TensorBoard events to disk."""
    if self._enabled:
      self._tb.flush()  # the JSON lines are flushed as they are written

  def close(self):
    """Flushes and closes the files; a second call does nothing."""
    if self._enabled:
      self._jsonl.close()
      self._tb.close()


def image_grid(images: np.ndarray, cols: int | None = None) -> np.ndarray:
  """Tiles images [N, H, W, C] in [-1, 1] into one uint8 [H', W', C] image.

  The grid has `cols` columns (default ceil(sqrt(N))) and white 2-pixel lines
  between tiles; C (1 or 3) is kept.
  """
  images = np.asarray(images, np.float32)
  n, h, w, c = images.shape
  if c not in (1, 3):
    raise ValueError(f'image_grid needs 1 or 3 channels, got shape {images.shape}.')
  cols = cols or math.ceil(math.sqrt(n))
  rows = math.ceil(n / cols)
  pixels = np.round(np.clip((images + 1.0) * 127.5, 0, 255)).astype(np.uint8)
  grid = np.full((rows * (h + _PAD) - _PAD, cols * (w + _PAD) - _PAD, c), _PAD_VALUE, np.uint8)
  for i in range(n):
    top, left = (i // cols) * (h + _PAD), (i % cols) * (w + _PAD)
    grid[top:top + h, left:left + w] = pixels[i]
  return grid


def scatter_plot(points: np.ndarray, extent: float, size: int = 256,
                 centers: np.ndarray | None = None) -> np.ndarray:
  """Draws 2-D points in [-extent, extent]^2 as dots on a white uint8 [size, size, 3] canvas.

  Args:
    points: [N, 2] in data coordinates; y points up. Non-finite points are skipped.
    extent: half the side of the square shown.
    size: side of the canvas in pixels.
    centers: optional [M, 2] mode centers, drawn as red crosses on top.

  Returns:
    uint8 [size, size, 3].
  """
  canvas = Image.new('RGB', (size, size), (255, 255, 255))
  draw = ImageDraw.Draw(canvas)
  scale = (size - 1) / (2.0 * extent)

  def to_pixels(xy):
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    pixels = np.stack([(xy[:, 0] + extent) * scale, (extent - xy[:, 1]) * scale], axis=1)
    # Points of a diverged generator stay off canvas without huge coordinates for PIL.
    return np.clip(pixels, -8, size + 8)

  for x, y in to_pixels(points):
    draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=(25, 25, 112))
  for x, y in to_pixels(centers if centers is not None else []):
    draw.line([x - 4, y, x + 4, y], fill=(220, 0, 0), width=2)
    draw.line([x, y - 4, x, y + 4], fill=(220, 0, 0), width=2)
  return np.asarray(canvas)


def save_png(path: str, image: np.ndarray):
  """Saves a uint8 HWC image (C = 1 or 3) as PNG, atomically, creating parent dirs."""
  image = np.asarray(image)
  image = image[..., 0] if image.shape[-1] == 1 else image  # PIL wants grayscale as HW
  directory = os.path.dirname(path) or '.'
  os.makedirs(directory, exist_ok=True)
  # A temp file in the same directory, so os.replace is an atomic rename.
  fd, tmp = tempfile.mkstemp(dir=directory, suffix='.png.tmp')
  try:
    with os.fdopen(fd, 'wb') as f:
      Image.fromarray(image).save(f, format='PNG')
    os.replace(tmp, path)
  except BaseException:
    os.remove(tmp)
    raise


def is_time(step: int, every: int, total: int) -> bool:
  """Whether a periodic action (log, sample, checkpoint) runs after `step` (1-based).

  True every `every` steps and at the last step, `total`.
  """
  return step >= 1 and (step % every == 0 or step == total)


def _format_duration(seconds: float) -> str:
  s = max(0, round(seconds))
  h, m, s = s // 3600, s // 60 % 60, s % 60
  if h:
    return f'{h}h{m}m{s}s'
  return f'{m}m{s}s' if m else f'{s}s'


class Progress:
  """Step rate, throughput and ETA, like clu's ReportProgress or big_vision's Chrono.

  Call `update(step)` at log time. The first call only sets the reference
  point, so compilation counts in neither rate nor ETA. Time spent inside
  `paused(name)` is left out of the step rate; the ETA is based on wall time
  since the reference, pauses included, since they recur.
  """

  def __init__(self, total_steps: int, batch_size: int, first_step: int,
               time_fn: Callable[[], float] = time.monotonic):
    self._total = total_steps
    self._batch_size = batch_size
    self._time_fn = time_fn
    self._start = (first_step, time_fn())
    self._ref = None  # (step, time) of the first update
    self._last = None  # (step, time) of the latest update
    self._paused_since_last = 0.0
    self._paused = {}  # name -> seconds paused since the reference

  @contextlib.contextmanager
  def paused(self, name: str) -> Iterator[None]:
    """Leaves the time spent in the block out of the step rate, reported under `name`."""
    start = self._time_fn()
    try:
      yield
    finally:
      dt = self._time_fn() - start
      self._paused_since_last += dt
      self._paused[name] = self._paused.get(name, 0.0) + dt

  def update(self, step: int) -> dict[str, float]:
    """Logs a progress line; returns {'steps_per_sec', 'images_per_sec'} ({} on the first call)."""
    now = self._time_fn()
    head = f'step {step}/{self._total} ({100 * step / self._total:.1f}%)'
    if self._ref is None:
      self._ref = self._last = (step, now)
      self._paused_since_last = 0.0
      self._paused = {}
      first_step, start = self._start
      logging.info('%s; steps %d-%d incl. compilation took %s', head, first_step, step,
                   _format_duration(now - start))
      return {}
    last_step, last_time = self._last
    busy = now - last_time - self._paused_since_last
    if step <= last_step or busy <= 0:
      return {}  # nothing to measure, e.g. the last step logged twice
    steps_per_sec = (step - last_step) / busy
    self._last = (step, now)
    self._paused_since_last = 0.0
    ref_step, ref_time = self._ref
    elapsed = now - ref_time
    eta = (self._total - step) * elapsed / (step - ref_step)
    line = (f'{head} {steps_per_sec:.1f} steps/s {steps_per_sec * self._batch_size:.0f} img/s '
            f'ETA {_format_duration(eta)}')
    if self._paused:
      line += ' | ' + ' '.join(f'{k} {100 * v / elapsed:.0f}%' for k, v in self._paused.items())
    logging.info('%s', line)
    return {'steps_per_sec': steps_per_sec, 'images_per_sec': steps_per_sec * self._batch_size}
