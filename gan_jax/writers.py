"""Metrics, images and progress: JSON lines, TensorBoard, PNG files and log lines.

`MetricWriter` has clu's metric-writer surface on top of tensorboardX, so this
package needs no TensorFlow. Every file goes through `gan_jax.paths`, local or gs://.
"""
import contextlib
import json
import math
import time
from typing import Callable, Iterator, Mapping, NamedTuple, Sequence
import uuid

from absl import logging
import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont
import tensorboardX
from tensorboardX import record_writer

from gan_jax import paths


class _BucketEventFiles:
  """tensorboardX's factory of gs:// event files: `paths.open_append`, uploaded at each of
  tensorboardX's flushes (every 2 minutes) and on close. It replaces tensorboardX's own, which
  uploads with google-cloud-storage's client, around `paths`."""

  def open(self, location: str):
    return paths.open_append(location)

  def directory_check(self, location: str):
    del location  # a bucket has no folders to create


record_writer.register_writer_factory(paths.BUCKET_SCHEME, _BucketEventFiles())

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
    # Append, so a resumed run continues the same file.
    self._jsonl = paths.open_append(paths.path(workdir) / 'metrics.jsonl')
    # tensorboardX names event files by the second and opens them with 'wb'; a
    # unique suffix keeps a quick restart in the same second from clobbering one.
    self._tb = tensorboardX.SummaryWriter(
        logdir=str(paths.path(workdir)), filename_suffix=f'.{uuid.uuid4().hex[:8]}')

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
    self._jsonl.write(json.dumps({'step': step, **record}, allow_nan=False).encode() + b'\n')
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
    """Pushes pending TensorBoard events to storage (in a bucket, when an upload is due)."""
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


class HeatMap(NamedTuple):
  """Values over the plot's square, drawn behind a scatter plot with a colour bar below."""
  values: np.ndarray  # [R, R] in [0, 1]; row 0 at y = +extent, column 0 at x = -extent
  caption: str  # what the colours show, e.g. 'D(x)'
  low: str  # the colour bar's label at 0
  high: str  # ... and at 1


# From 0 (D: fake) through 1/2 (D cannot tell) to 1 (D: real): ColorBrewer PuOr's pale
# purple, white and pale orange, light enough for the points and crosses on top to show.
_HEAT_RAMP = np.array([[178, 171, 210], [247, 247, 247], [253, 184, 99]], np.float64)
_POINT_COLOR = (25, 25, 112)
_CENTER_COLOR = (220, 0, 0)


def heat_colors(values: np.ndarray) -> np.ndarray:
  """uint8 RGB [..., 3] of values in [0, 1], linear between the colours of _HEAT_RAMP."""
  position = np.clip(np.nan_to_num(values, nan=0.5), 0.0, 1.0) * (len(_HEAT_RAMP) - 1)
  low = np.minimum(position.astype(int), len(_HEAT_RAMP) - 2)
  weight = (position - low)[..., None]
  return np.round((1 - weight) * _HEAT_RAMP[low] + weight * _HEAT_RAMP[low + 1]).astype(np.uint8)


def _resize_square(values: np.ndarray, size: int) -> np.ndarray:
  """Bilinear resize of [R, R] to [size, size], corner samples on corner pixels."""
  position = np.linspace(0, len(values) - 1, size)
  low = np.minimum(position.astype(int), len(values) - 2)
  weight = position - low
  rows = (1 - weight)[:, None] * values[low] + weight[:, None] * values[low + 1]
  return (1 - weight) * rows[:, low] + weight * rows[:, low + 1]


def _legend(width: int, heat_map: HeatMap) -> Image.Image:
  """A white strip: the colour bar with its end labels and caption, and the markers' key."""
  font = ImageFont.load_default()
  line = 13  # pixels per text line
  strip = Image.new('RGB', (width, 4 * line + 6), (255, 255, 255))
  draw = ImageDraw.Draw(strip)
  bar = heat_colors(np.linspace(0.0, 1.0, width - 8))[None].repeat(line - 3, axis=0)
  strip.paste(Image.fromarray(bar), (4, 3))
  draw.text((4, line), heat_map.low, fill=(0, 0, 0), font=font)
  draw.text((width - 4 - draw.textlength(heat_map.high, font=font), line), heat_map.high,
            fill=(0, 0, 0), font=font)
  draw.text(((width - draw.textlength(heat_map.caption, font=font)) / 2, 2 * line),
            heat_map.caption, fill=(0, 0, 0), font=font)
  y = 3 * line + 6
  draw.line([6, y, 14, y], fill=_CENTER_COLOR, width=2)
  draw.line([10, y - 4, 10, y + 4], fill=_CENTER_COLOR, width=2)
  draw.text((20, y - 6), 'real modes', fill=(0, 0, 0), font=font)
  draw.ellipse([width / 2 - 1.5, y - 1.5, width / 2 + 1.5, y + 1.5], fill=_POINT_COLOR)
  draw.text((width / 2 + 8, y - 6), 'G(z) samples', fill=(0, 0, 0), font=font)
  return strip


def scatter_plot(points: np.ndarray, extent: float, size: int = 256,
                 centers: np.ndarray | None = None,
                 heat_map: HeatMap | None = None) -> np.ndarray:
  """Draws 2-D points in [-extent, extent]^2 as dots on a uint8 [size, size, 3] canvas.

  Args:
    points: [N, 2] in data coordinates; y points up. Non-finite points are skipped.
    extent: half the side of the square shown.
    size: side of the canvas in pixels.
    centers: optional [M, 2] mode centers, drawn as red crosses on top.
    heat_map: optional values over the square, drawn as colours behind the points
      instead of white, with a legend strip (colour bar, markers) below the square.

  Returns:
    uint8 [size, size, 3], or [size + legend, size, 3] with a heat map.
  """
  if heat_map is None:
    canvas = Image.new('RGB', (size, size), (255, 255, 255))
  else:
    canvas = Image.fromarray(heat_colors(_resize_square(np.asarray(heat_map.values), size)))
  draw = ImageDraw.Draw(canvas)
  scale = (size - 1) / (2.0 * extent)

  def to_pixels(xy):
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    pixels = np.stack([(xy[:, 0] + extent) * scale, (extent - xy[:, 1]) * scale], axis=1)
    # Points of a diverged generator stay off canvas without huge coordinates for PIL.
    return np.clip(pixels, -8, size + 8)

  for x, y in to_pixels(points):
    draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=_POINT_COLOR)
  for x, y in to_pixels(centers if centers is not None else []):
    draw.line([x - 4, y, x + 4, y], fill=_CENTER_COLOR, width=2)
    draw.line([x, y - 4, x, y + 4], fill=_CENTER_COLOR, width=2)
  if heat_map is None:
    return np.asarray(canvas)
  return np.concatenate([np.asarray(canvas), np.asarray(_legend(size, heat_map))])


def save_png(path: str, image: np.ndarray):
  """Saves a uint8 HWC image (C = 1 or 3) as PNG, atomically (`paths.write_atomically`)."""
  image = np.asarray(image)
  image = image[..., 0] if image.shape[-1] == 1 else image  # PIL wants grayscale as HW
  paths.write_atomically(path, lambda f: Image.fromarray(image).save(f, format='PNG'))


def save_gif(path: str, frames: Sequence[np.ndarray], frame_ms: int, last_frame_ms: int):
  """Saves uint8 HWC RGB frames as an animated GIF that loops, atomically.

  Each frame shows for `frame_ms` milliseconds, the last for `last_frame_ms`. Frames
  identical to the one before are merged into it by PIL: give each a label to keep it.
  """
  images = [Image.fromarray(np.asarray(frame)) for frame in frames]
  durations = [frame_ms] * (len(images) - 1) + [last_frame_ms]
  paths.write_atomically(path, lambda f: images[0].save(
      f, format='GIF', save_all=True, append_images=images[1:], duration=durations, loop=0))


def is_time(step: int, every: int, total: int) -> bool:
  """Whether a periodic action (log, sample, checkpoint) runs after `step` (1-based).

  True every `every` steps and at the last step, `total`.
  """
  return step >= 1 and (step % every == 0 or step == total)


def format_duration(seconds: float) -> str:
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
  since the reference, pauses included, since they recur. With a wall-clock budget
  (`budget_minutes`), each line also says how much of it is spent and whether the budget
  or `total_steps` ends the run. `images_before(step)` counts the real images the first
  `step` steps showed D (growth.images_before: a growing model's batch changes by stage).
  """

  def __init__(self, total_steps: int, images_before: Callable[[int], int], first_step: int,
               budget_minutes: float = 0.0, time_fn: Callable[[], float] = time.monotonic):
    self._total = total_steps
    self._budget = 60.0 * budget_minutes  # config.train_minutes: 0 for none
    self._images_before = images_before
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

  def update(self, step: int, seconds_left: float = math.inf) -> dict[str, float]:
    """Logs a progress line; returns {'steps_per_sec', 'images_per_sec'} ({} on the first call).

    `seconds_left` caps the ETA: a wall-clock budget may end the run before its last step.
    """
    now = self._time_fn()
    head = f'step {step}/{self._total} ({100 * step / self._total:.1f}%)'
    budgeted = self._budget > 0 and math.isfinite(seconds_left)
    if budgeted:
      head += (f', {format_duration(self._budget - seconds_left)} of the '
               f'{self._budget / 60:g}-minute budget')
    if self._ref is None:
      self._ref = self._last = (step, now)
      self._paused_since_last = 0.0
      self._paused = {}
      first_step, start = self._start
      logging.info('%s; steps %d-%d incl. compilation took %s', head, first_step, step,
                   format_duration(now - start))
      return {}
    last_step, last_time = self._last
    busy = now - last_time - self._paused_since_last
    if step <= last_step or busy <= 0:
      return {}  # nothing to measure, e.g. the last step logged twice
    steps_per_sec = (step - last_step) / busy
    images_per_sec = (self._images_before(step) - self._images_before(last_step)) / busy
    self._last = (step, now)
    self._paused_since_last = 0.0
    ref_step, ref_time = self._ref
    elapsed = now - ref_time
    steps_eta = (self._total - step) * elapsed / (step - ref_step)
    eta = min(steps_eta, seconds_left)
    line = (f'{head}{";" if budgeted else ""} {steps_per_sec:.1f} steps/s '
            f'{images_per_sec:.0f} img/s ETA {format_duration(eta)}')
    if budgeted:  # a budget far from its end says nothing by the percentage of steps alone
      line += (' (the budget ends the run)' if seconds_left < steps_eta else
               f' (step {self._total} ends the run)')
    if self._paused:
      line += ' | ' + ' '.join(f'{k} {100 * v / elapsed:.0f}%' for k, v in self._paused.items())
    logging.info('%s', line)
    return {'steps_per_sec': steps_per_sec, 'images_per_sec': images_per_sec}
