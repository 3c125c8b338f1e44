"""Tests of gan_jax.writers."""
import glob
import io
import json
import math
import os
import stat

import numpy as np
from PIL import Image
import pytest
from tensorboard.backend.event_processing import event_accumulator

from gan_jax import writers


def read_jsonl(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def read_tensorboard(workdir):
  """Every event file in workdir, as TensorBoard itself reads them (no TensorFlow needed)."""
  reader = event_accumulator.EventAccumulator(
      workdir, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0})
  return reader.Reload()  # 0: keep every event, none sampled away


def test_write_scalars_jsonl_tensorboard_and_resume(tmp_path):
  workdir = str(tmp_path / 'run')
  writer = writers.MetricWriter(workdir)
  writer.write_scalars(1, {'d_loss': 0.5, 'g_loss': np.float32(2.25)})
  writer.write_scalars(2, {'d_loss': np.array(0.25), 'g_loss': 1.0})
  writer.close()
  # A resumed run opens a new writer on the same workdir.
  writer = writers.MetricWriter(workdir)
  writer.write_scalars(3, {'d_loss': 0.125, 'g_loss': float('nan')})
  writer.close()

  assert read_jsonl(workdir) == [
      {'step': 1, 'd_loss': 0.5, 'g_loss': 2.25},
      {'step': 2, 'd_loss': 0.25, 'g_loss': 1.0},
      {'step': 3, 'd_loss': 0.125, 'g_loss': None},
  ]
  assert len(glob.glob(os.path.join(workdir, 'events.*'))) == 2
  tb = read_tensorboard(workdir)
  assert sorted(tb.Tags()['scalars']) == ['d_loss', 'g_loss']
  # Files are read in name order, and two writers in the same second differ only by a random
  # suffix; TensorBoard plots by step.
  by_step = lambda tag: sorted((event.step, event.value) for event in tb.Scalars(tag))
  d_loss, g_loss = by_step('d_loss'), by_step('g_loss')
  assert d_loss == [(1, 0.5), (2, 0.25), (3, 0.125)]
  assert g_loss[:2] == [(1, 2.25), (2, 1.0)] and g_loss[2][0] == 3 and math.isnan(g_loss[2][1])


def test_jsonl_is_flushed_after_each_write(tmp_path):
  writer = writers.MetricWriter(str(tmp_path))
  writer.write_scalars(7, {'x': float('inf')})
  assert read_jsonl(str(tmp_path)) == [{'step': 7, 'x': None}]
  writer.close()


def test_write_images_to_tensorboard(tmp_path):
  gray = np.arange(24, dtype=np.uint8).reshape(4, 6, 1) * 10
  writer = writers.MetricWriter(str(tmp_path))
  writer.write_images(5, {'gray': gray, 'rgb': np.full((4, 6, 3), 1.5, np.float32)})
  writer.write_images(7, {'gray': gray[:, :3]})
  writer.close()
  tb = read_tensorboard(str(tmp_path))
  assert sorted(tb.Tags()['images']) == ['gray', 'rgb']
  assert [(e.step, e.width, e.height) for e in tb.Images('gray')] == [(5, 6, 4), (7, 3, 4)]
  (rgb,) = tb.Images('rgb')
  assert (rgb.step, rgb.width, rgb.height) == (5, 6, 4)
  decode = lambda event: np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))
  # tensorboardX stores one channel as three equal ones.
  np.testing.assert_array_equal(decode(tb.Images('gray')[0]), np.repeat(gray, 3, axis=-1))
  np.testing.assert_array_equal(decode(rgb), np.full((4, 6, 3), 255))  # clipped to 1, not wrapped


def test_disabled_writer_writes_nothing(tmp_path):
  workdir = tmp_path / 'run'
  writer = writers.MetricWriter(str(workdir), enabled=False)
  writer.write_scalars(1, {'x': 1.0})
  writer.write_images(1, {'img': np.zeros((2, 2, 3), np.uint8)})
  writer.flush()
  writer.close()
  assert not workdir.exists()


def test_image_grid_layout_and_values():
  images = -np.ones((64, 28, 28, 1), np.float32)
  images[9, 3, 5, 0] = 1.0  # tile 9: row 1, column 1 of the 8x8 grid
  images[63, 27, 27, 0] = 0.0  # the last pixel of the last tile
  grid = writers.image_grid(images)
  assert grid.dtype == np.uint8
  assert grid.shape == (8 * 28 + 7 * 2, 8 * 28 + 7 * 2, 1)  # 238
  assert grid[30 + 3, 30 + 5, 0] == 255
  assert grid[30 + 3, 30 + 6, 0] == 0
  assert grid[237, 237, 0] == 128  # round(127.5)
  assert (grid[28:30, :, 0] == 255).all()  # padding line below the first row
  assert (grid[:, 28:30, 0] == 255).all()


def test_image_grid_partial_last_row_rgb():
  grid = writers.image_grid(np.zeros((5, 4, 4, 3), np.float32))
  # ceil(sqrt(5)) = 3 columns, 2 rows.
  assert grid.shape == (2 * 4 + 2, 3 * 4 + 2 * 2, 3)
  assert (grid[6:, 12:] == 255).all()  # the empty sixth tile


def test_scatter_plot_draws_points_and_centers():
  # extent 2, size 101: 50 pixels per data unit, y up.
  image = writers.scatter_plot(np.array([[1.0, 1.0], [np.nan, 0.0]]), extent=2.0, size=101,
                               centers=np.array([[-1.0, -1.0]]))
  assert image.shape == (101, 101, 3) and image.dtype == np.uint8
  assert image[25, 75].sum() < 3 * 128  # (1, 1) -> row 25, column 75
  r, g, b = image[75, 25].astype(int)  # center (-1, -1) -> row 75, column 25
  assert r > 150 and g < 50 and b < 50
  for corner in [(0, 0), (0, 100), (100, 0), (100, 100)]:
    assert (image[corner] == 255).all()


def test_heat_colors_run_from_fake_through_undecided_to_real():
  ends = writers.heat_colors(np.array([0.0, 0.5, 1.0, -3.0, np.nan]))
  assert ends.dtype == np.uint8
  np.testing.assert_array_equal(ends[:3], writers._HEAT_RAMP)
  np.testing.assert_array_equal(ends[3], ends[0])  # clipped
  np.testing.assert_array_equal(ends[4], ends[1])  # NaN: undecided, not black
  quarter = writers.heat_colors(np.array(0.25)).astype(int)
  np.testing.assert_allclose(quarter, (writers._HEAT_RAMP[0] + writers._HEAT_RAMP[1]) / 2, atol=1)


def test_scatter_plot_draws_the_heat_map_behind_the_points_with_a_legend():
  values = np.zeros((8, 8))
  values[:, 4:] = 1.0  # the right half
  heat_map = writers.HeatMap(values, 'D(x)', '0 fake', '1 real')
  image = writers.scatter_plot(np.array([[1.0, 1.0]]), extent=2.0, size=101,
                               centers=np.array([[-1.0, -1.0]]), heat_map=heat_map)
  assert image.shape[0] > 101 and image.shape[1:] == (101, 3)  # the legend strip below
  low, high = writers.heat_colors(np.array([0.0, 1.0]))
  np.testing.assert_array_equal(image[50, 5], low)
  np.testing.assert_array_equal(image[50, 95], high)
  assert image[25, 75].sum() < 3 * 128  # the point (1, 1) on top
  r, g, b = image[75, 25].astype(int)  # the cross (-1, -1) on top
  assert r > 150 and g < 50 and b < 50
  bar = image[101:].reshape(-1, 3)  # the legend holds the colour bar's both ends
  assert (bar == low).all(axis=1).any() and (bar == high).all(axis=1).any()


@pytest.mark.parametrize('channels', [1, 3])
def test_save_png_round_trip(tmp_path, channels):
  image = np.random.default_rng(0).integers(0, 256, (5, 7, channels), dtype=np.uint8)
  path = str(tmp_path / 'a' / 'b' / 'grid.png')
  writers.save_png(path, image)
  loaded = np.asarray(Image.open(path))
  np.testing.assert_array_equal(loaded.reshape(image.shape), image)
  assert os.listdir(tmp_path / 'a' / 'b') == ['grid.png']  # no temp file left


def test_saved_images_get_the_usual_permissions(tmp_path):
  previous = os.umask(0o027)
  try:
    writers.save_png(str(tmp_path / 'grid.png'), np.zeros((4, 4, 1), np.uint8))
  finally:
    os.umask(previous)
  assert stat.S_IMODE(os.stat(tmp_path / 'grid.png').st_mode) == 0o640  # 0666 less the umask


@pytest.mark.parametrize('step, every, total, expected', [
    (0, 100, 1000, False),
    (1, 100, 1000, False),
    (100, 100, 1000, True),
    (150, 100, 1000, False),
    (1000, 100, 1000, True),
    (1050, 100, 1050, True),  # the last step, not a multiple
    (1, 1, 5, True),
    (3, 2, 5, False),
    (5, 2, 5, True),
])
def test_is_time(step, every, total, expected):
  assert writers.is_time(step, every, total) is expected


class FakeClock:

  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


def test_progress_rate_eta_and_pauses(caplog):
  clock = FakeClock()
  progress = writers.Progress(total_steps=1000, images_before=lambda step: 64 * step, first_step=0,
                              time_fn=clock)
  clock.now += 30.0  # compilation
  assert progress.update(100) == {}  # the reference point

  clock.now += 10.0
  metrics = progress.update(200)
  assert metrics == pytest.approx({'steps_per_sec': 10.0, 'images_per_sec': 640.0})

  clock.now += 8.0
  with progress.paused('checkpoint'):
    clock.now += 2.0
  with caplog.at_level('INFO'):
    metrics = progress.update(300)
  # 100 steps in 10 s minus 2 s paused.
  assert metrics == pytest.approx({'steps_per_sec': 12.5, 'images_per_sec': 800.0})
  # ETA: 200 steps in 20 s of wall time since the reference, 700 to go -> 70 s.
  # Checkpoint share: 2 s of 20 s.
  assert 'step 300/1000 (30.0%) 12.5 steps/s 800 img/s ETA 1m10s | checkpoint 10%' in caplog.text


def test_progress_counts_the_images_of_each_step_when_the_batch_changes():
  # A growing model's batch changes by stage: 16 images per step up to step 150, 4 after.
  clock = FakeClock()
  images_before = lambda step: 16 * min(step, 150) + 4 * max(step - 150, 0)
  progress = writers.Progress(total_steps=1000, images_before=images_before, first_step=0,
                              time_fn=clock)
  progress.update(100)
  clock.now += 10.0
  # 50 steps of 16 and 50 of 4 images in 10 s.
  assert progress.update(200) == pytest.approx({'steps_per_sec': 10.0, 'images_per_sec': 100.0})


def test_progress_eta_ends_with_a_time_budget(caplog):
  clock = FakeClock()
  progress = writers.Progress(total_steps=1000, images_before=lambda step: step, first_step=0,
                              time_fn=clock)
  progress.update(100)
  clock.now += 10.0
  with caplog.at_level('INFO'):
    progress.update(200, seconds_left=30.0)  # the steps would take 80 s more; the budget ends first
  assert 'ETA 30s' in caplog.text


@pytest.mark.parametrize('seconds_left, ends', [
    (30.0, 'ETA 30s (the budget ends the run)'),  # the steps would take 80 s more
    (300.0, 'ETA 1m20s (step 1000 ends the run)')])
def test_progress_with_a_budget_says_what_is_spent_and_which_limit_ends_the_run(
    caplog, seconds_left, ends):
  clock = FakeClock()
  progress = writers.Progress(total_steps=1000, images_before=lambda step: step, first_step=0,
                              budget_minutes=15, time_fn=clock)
  with caplog.at_level('INFO'):
    progress.update(100, seconds_left=900.0 - 20)
    clock.now += 10.0
    progress.update(200, seconds_left=seconds_left)
  first, second = caplog.messages
  assert first.startswith('step 100/1000 (10.0%), 20s of the 15-minute budget; steps 0-100')
  spent = writers.format_duration(900.0 - seconds_left)
  assert second.startswith(f'step 200/1000 (20.0%), {spent} of the 15-minute budget; 10.0 steps/s')
  assert second.endswith(ends), second


def test_progress_repeated_step_measures_nothing():
  clock = FakeClock()
  progress = writers.Progress(total_steps=10, images_before=lambda step: step, first_step=0,
                              time_fn=clock)
  progress.update(5)
  clock.now += 1.0
  assert progress.update(5) == {}
  clock.now += 1.0
  assert progress.update(10) == pytest.approx({'steps_per_sec': 2.5, 'images_per_sec': 2.5})


@pytest.mark.parametrize('seconds, text', [
    (0.4, '0s'), (59, '59s'), (446, '7m26s'), (3600, '1h0m0s'), (3725, '1h2m5s')])
def test_format_duration(seconds, text):
  assert writers.format_duration(seconds) == text
