"""Tiny IDX files written by the tests, so that no test needs a real data set."""
import gzip
import os

import numpy as np

NUM_TRAIN, NUM_TEST = 20, 6


def write_idx(path, data, magic=None, gz=True):
  magic = magic or (2051 if data.ndim == 3 else 2049)
  raw = (magic.to_bytes(4, 'big') + np.array(data.shape, '>u4').tobytes()
         + data.astype(np.uint8).tobytes())
  with open(path + '.gz' if gz else path, 'wb') as f:
    f.write(gzip.compress(raw) if gz else raw)


def write_dataset(folder, gz=True):
  """Writes tiny IDX files; pixel [0, 0] of image i is i, pixels [0, 1:3] are 0 and 255."""
  os.makedirs(folder, exist_ok=True)
  rng = np.random.default_rng(0)
  data = {}
  for split, n in (('train', NUM_TRAIN), ('t10k', NUM_TEST)):
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    images[:, 0, :3] = np.stack([np.arange(n), np.zeros(n), np.full(n, 255)], axis=1)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    write_idx(os.path.join(folder, f'{split}-images-idx3-ubyte'), images, gz=gz)
    write_idx(os.path.join(folder, f'{split}-labels-idx1-ubyte'), labels, gz=gz)
    data[split] = images, labels
  return data
