"""`python -m gan_jax.main`, recording what tests/test_multiprocess.py checks of each process.

`python tests/recorded_main.py RECORD_DIR [MAIN_FLAGS...]` runs gan_jax.main with the flags
and writes RECORD_DIR/process_<i>.npz (every array of the final state) and
RECORD_DIR/process_<i>.json: the files it opened for writing in the workdir outside
checkpoints/, and the training images of each batch it trained on (by the index that
tests/idx_files.py puts in pixel [0, 0]).
"""
import json
import os
import runpy
import sys

import jax
import numpy as np

from gan_jax import input_pipeline, train

record_dir, main_flags = sys.argv[1], sys.argv[2:]
workdir = os.path.abspath(next(flag.split('=', 1)[1] for flag in main_flags
                               if flag.startswith('--workdir=')))
written, images_read = set(), []  # images_read: a list of image indices per batch
training = False  # main's check that the workdir is writable does not count


def _note_writes(event, args):
  """An audit hook: notes the files under the workdir (but checkpoints/) opened for writing or
  renamed to, as atomic writes do."""
  if not training:
    return
  if event == 'open' and isinstance(args[0], (str, bytes, os.PathLike)):
    path, mode, flags = args
    if not (any(c in mode for c in 'wax+') if mode else
            flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
      return
  elif event == 'os.rename':  # os.replace too
    path = args[1]
  else:
    return
  relative = os.path.relpath(os.path.abspath(os.fsdecode(path)), workdir)
  if not relative.startswith(('..', 'checkpoints')):
    written.add(relative)


def _recording_create_dataset(*args, _create_dataset=input_pipeline.create_dataset, **kwargs):
  def record(batch):
    if batch['data'].ndim == 5:  # images, not toy points
      indices = np.rint((batch['data'][..., 0, 0, 0] + 1) * 127.5).astype(int)
      images_read.append(indices.tolist())
    return batch

  return _create_dataset(*args, **kwargs).map(record)


def _recording_train_and_evaluate(*args, _train_and_evaluate=train.train_and_evaluate,
                                  **kwargs):
  global training
  training = True
  state = _train_and_evaluate(*args, **kwargs)
  name = os.path.join(record_dir, f'process_{jax.process_index()}')
  np.savez(name + '.npz', *jax.tree.leaves(jax.device_get(state)))
  with open(name + '.json', 'w') as f:
    json.dump({'written': sorted(written), 'images_read': images_read}, f)
  return state


sys.addaudithook(_note_writes)
input_pipeline.create_dataset = _recording_create_dataset
train.train_and_evaluate = _recording_train_and_evaluate
sys.argv = ['gan_jax.main', *main_flags]
runpy.run_module('gan_jax.main', run_name='__main__')
