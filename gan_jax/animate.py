r"""Strings a run's sample PNGs into an animated GIF of its training.

python -m gan_jax.animate --workdir runs/toy_grid   # writes runs/toy_grid/training.gif

The frames are WORKDIR/samples/step_<N>.png in step order, each labelled with its step.
A 2-D toy run writes its GIF by itself when training ends: there the frames show the
game (`toy_plot`), G's samples moving over D's belief. Image runs get one on request.
"""
import os
import re

from absl import app
from absl import flags
from etils import epath
import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from gan_jax import cli, paths, writers
from gan_jax.errors import UserError

GIF_NAME = 'training.gif'
_FRAME = re.compile(r'step_(\d+)\.png')
_LABEL_HEIGHT = 16  # pixels of the white strip holding a frame's step


def sample_frames(workdir: str) -> list[tuple[int, epath.Path]]:
  """(step, path) of the sample PNGs in WORKDIR/samples, in step order."""
  directory = paths.path(workdir) / 'samples'
  files = directory.iterdir() if directory.is_dir() else []
  return sorted((int(match[1]), file) for file in files
                if (match := _FRAME.fullmatch(file.name)))


def _labelled(path: epath.Path, label: str) -> np.ndarray:
  """The image at `path` as RGB under a white strip that says `label`."""
  with path.open('rb') as f:
    image = Image.open(f).convert('RGB')
  frame = Image.new('RGB', (image.width, image.height + _LABEL_HEIGHT), (255, 255, 255))
  frame.paste(image, (0, _LABEL_HEIGHT))
  ImageDraw.Draw(frame).text((4, 2), label, fill=(0, 0, 0), font=ImageFont.load_default())
  return np.asarray(frame)


def write_gif(workdir: str, frame_ms: int = 400, last_frame_ms: int = 2000) -> str:
  """Writes WORKDIR/training.gif from the run's sample PNGs; returns its path.

  Raises:
    UserError: when the workdir holds no sample PNGs, or a duration is not positive.
  """
  if min(frame_ms, last_frame_ms) <= 0:
    raise UserError(f'Frame durations must be positive milliseconds; got {frame_ms} and '
                    f'{last_frame_ms}.')
  frames = sample_frames(workdir)
  if not frames:
    raise UserError(f'{os.path.join(workdir, "samples")} holds no step_<N>.png sample images: '
                    'train in this workdir first (samples are written every '
                    'config.sample_every steps).')
  path = os.path.join(workdir, GIF_NAME)
  writers.save_gif(path, [_labelled(png, f'step {step}') for step, png in frames],
                   frame_ms, last_frame_ms)
  return path


FLAGS = flags.FLAGS


def _define_flags() -> None:
  """Defines the command's flags, only when it runs as a program: train imports this module."""
  flags.DEFINE_string('workdir', None, 'A gan_jax training workdir.')
  flags.DEFINE_integer('frame_ms', 400, 'Milliseconds each frame shows.')
  flags.DEFINE_integer('last_frame_ms', 2000, 'Milliseconds the last frame shows.')
  flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  path = write_gif(FLAGS.workdir, FLAGS.frame_ms, FLAGS.last_frame_ms)
  print(f'Wrote {len(sample_frames(FLAGS.workdir))} frames to {path}')


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
