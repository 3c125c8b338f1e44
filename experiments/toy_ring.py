r"""MLP GAN on a ring of 8 Gaussians: the standard mode-collapse benchmark.

(Metz et al., 2017, "Unrolled GANs"): 8 modes of std 0.02 on a circle of radius 2.
A 2-D latent and batches of 512 let the non-saturating GAN cover all 8 in ~25 s on a CPU.

python -m gan_jax.main --config experiments/toy_ring.py --workdir runs/toy_ring
"""
from gan_jax import configs


def get_config(arg=None):
  return configs.apply_preset(configs.toy('ring8'), arg)
