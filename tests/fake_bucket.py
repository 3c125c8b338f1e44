"""A gs:// bucket in a local folder, for tests that cannot reach Cloud Storage.

gan_jax's own files reach gs:// through etils.epath, which asks fsspec for the 'gcs'
protocol (gcsfs in real life): here a filesystem that maps gs://BUCKET/KEY to ROOT/BUCKET/KEY
and, as a bucket does, needs no folders to write a key. Orbax writes its arrays with
tensorstore's own GCS driver instead: its one function that builds that driver's spec is
pointed at tensorstore's file driver on the same folder, and the bucket is a flat one
(orbax asks google-cloud-storage's client whether it has a hierarchical namespace).

`python tests/fake_bucket.py ROOT -m gan_jax.PROGRAM FLAGS...` runs a program with gs://
served from ROOT; its last line of stdout is a JSON list of the local paths outside ROOT
that the program wrote (opened for writing, created, renamed or deleted), as an audit hook
saw them. Writes in C++ (tensorstore's) escape the hook: the test checks for those by
giving the program an empty cwd, HOME and TMPDIR.
"""
import importlib
import json
import os
import runpy
import sys

from etils.epath import backend
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem
from orbax.checkpoint._src.path import gcs_utils
import pytest

PROTOCOLS = ('gs', 'gcs')  # epath asks for 'gcs'; gan_jax.paths checks that 'gs' is served


def filesystem(root: str) -> type[DirFileSystem]:
  """An fsspec filesystem class serving gs://BUCKET/KEY from ROOT/BUCKET/KEY."""

  class Bucket(DirFileSystem):
    protocol = PROTOCOLS

    def __init__(self, **options):
      del options  # gcsfs's, such as finalize_on_close
      super().__init__(path=root, fs=LocalFileSystem(auto_mkdir=True))

  return Bucket


def kvstore(root: str):
  """orbax's gcs_utils.get_kvstore_for_gcs, for the bucket in `root`."""
  def get_kvstore_for_gcs(ckpt_path: str) -> dict[str, str]:
    bucket, key = gcs_utils.parse_gcs_path(ckpt_path, add_trailing_slash=False)
    return {'driver': 'file', 'path': os.path.join(root, bucket, key)}
  return get_kvstore_for_gcs


def install(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
  """Serves gs:// from `root` until `monkeypatch` is undone."""
  # The module's dict, not fsspec.registry (a read-only view of it): monkeypatch restores it.
  registry = importlib.import_module('fsspec.registry')._registry
  for protocol in PROTOCOLS:
    monkeypatch.setitem(registry, protocol, filesystem(root))
  monkeypatch.setattr(gcs_utils, 'get_kvstore_for_gcs', kvstore(root))
  monkeypatch.setattr(gcs_utils, 'is_hierarchical_namespace_enabled', lambda path: False)
  clear_cached_filesystems()


def clear_cached_filesystems() -> None:
  """Makes epath ask fsspec again: it keeps the filesystem it got for each protocol."""
  type(backend.fsspec_backend)._get_filesystem.cache_clear()  # pylint: disable=protected-access


_outside = []  # what the audit hook saw, while `_root` is set
_root = None
# Audit events that write, with the argument positions of each path and of the folder's file
# descriptor it is relative to (shutil.rmtree's os.remove(name, dir_fd=fd)), if any.
_WRITES = {'os.mkdir': ((0, 2),), 'os.rename': ((0, 2), (1, 3)), 'os.remove': ((0, 1),),
           'os.rmdir': ((0, 1),), 'os.truncate': ((0, None),), 'os.symlink': ((1, 2),),
           'os.link': ((1, 3),), 'shutil.rmtree': ((0, 1),)}


def _note_local_writes(event: str, args: tuple) -> None:
  """An audit hook: notes the local paths outside `_root` that are written."""
  if _root is None:
    return
  if event == 'open':
    path, mode, flags = args
    if not (any(c in mode for c in 'wax+') if mode else
            flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
      return
    written = [(path, None)]
  else:
    written = [(args[i], None if j is None else args[j]) for i, j in _WRITES.get(event, ())]
  for path, dir_fd in written:
    if not isinstance(path, (str, bytes, os.PathLike)):
      continue  # a file descriptor
    folder = os.getcwd() if dir_fd in (None, -1) else os.readlink(f'/proc/self/fd/{dir_fd}')
    path = os.path.join(folder, os.fsdecode(path))
    if (os.path.commonpath([path, _root]) != _root
        and not path.startswith(('/dev/', '/proc/'))):
      _outside.append(path)


def main(root: str, program: str, flags: list[str]) -> None:
  global _root
  install(root, pytest.MonkeyPatch())
  sys.addaudithook(_note_local_writes)
  _root = os.path.abspath(root)
  sys.argv = [program, *flags]
  try:
    runpy.run_module(program, run_name='__main__', alter_sys=True)
  finally:  # also after absl's sys.exit
    _root = None
    print(json.dumps(sorted(set(_outside))))


if __name__ == '__main__':
  if len(sys.argv) < 4 or sys.argv[2] != '-m':
    sys.exit('Usage: python tests/fake_bucket.py ROOT -m MODULE [FLAGS...]')
  main(sys.argv[1], sys.argv[3], sys.argv[4:])
