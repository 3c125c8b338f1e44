"""Tests of gan_jax.animate: the training GIF from a workdir's sample PNGs."""
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from gan_jax import animate, writers
from gan_jax.errors import UserError

REPO = os.path.join(os.path.dirname(__file__), '..')


def _write_samples(workdir, steps):
  """A solid-colour PNG per step, its colour telling the step; returns {step: colour}."""
  colors = {}
  for step in steps:
    colors[step] = (step % 256, 255 - step % 256, 50)
    writers.save_png(os.path.join(workdir, 'samples', f'step_{step:06d}.png'),
                     np.full((20, 30, 3), colors[step], np.uint8))
  return colors


def test_gif_holds_one_frame_per_sample_in_step_order(tmp_path):
  colors = _write_samples(str(tmp_path), [100, 2, 10, 1000000])  # written out of order
  (tmp_path / 'samples' / 'step_000005.png.tmp').write_bytes(b'half a file')  # not a frame
  path = animate.write_gif(str(tmp_path))
  assert path == str(tmp_path / 'training.gif')
  gif = Image.open(path)
  assert gif.n_frames == 4
  shown = []
  for i in range(gif.n_frames):
    gif.seek(i)
    frame = np.asarray(gif.convert('RGB'))
    assert frame.shape == (20 + animate._LABEL_HEIGHT, 30, 3)  # the step's label on top
    assert (frame[:animate._LABEL_HEIGHT] != 255).any()  # some text in the label strip
    shown.append(tuple(int(v) for v in frame[-1, -1]))
  assert shown == [colors[step] for step in sorted(colors)]


def test_gif_needs_positive_durations(tmp_path):
  _write_samples(str(tmp_path), [1])
  with pytest.raises(UserError, match='positive'):
    animate.write_gif(str(tmp_path), frame_ms=0)


def test_cli_on_a_workdir_without_samples_prints_one_error_line(tmp_path):
  result = subprocess.run([sys.executable, '-m', 'gan_jax.animate', f'--workdir={tmp_path}'],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
  assert result.returncode != 0
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('Error: ') and 'no step_<N>.png' in lines[0]
  assert not os.listdir(tmp_path)  # nothing written


def test_cli_writes_the_gif(tmp_path):
  _write_samples(str(tmp_path), [1, 2])
  result = subprocess.run([sys.executable, '-m', 'gan_jax.animate', f'--workdir={tmp_path}'],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
  assert result.returncode == 0, result.stderr
  assert 'Wrote 2 frames' in result.stdout
  assert Image.open(tmp_path / 'training.gif').n_frames == 2
