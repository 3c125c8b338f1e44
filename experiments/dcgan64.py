r"""DCGAN 64x64 as pytorch/examples' dcgan/main.py ships it, on Fashion-MNIST upsampled to 64x64.

The like-for-like peer of benchmarks/pytorch_dcgan.py: the same networks (Radford et al.,
2016: transposed convolutions with batch norm and ReLU in G, strided convolutions with
batch norm and leaky ReLU in D), loss (BCE, G maximising log D(G(z))), Adam 2e-4/0.5 and
batch 64; the reference's `--dataset mnist` likewise upsamples 28x28 grey images to 64x64.

python -m gan_jax.main --config experiments/dcgan64.py --workdir runs/dcgan64
python -m gan_jax.benchmark --config experiments/dcgan64.py --synthetic
"""
from gan_jax import configs


def get_config(arg=None):
  config = configs.default()
  config.dataset = 'fashion_mnist'
  config.data.image_size = 64
  config.model.name = 'dcgan'
  config.model.width = 64
  config.model.d_batch_norm = True
  config.loss = 'non_saturating'
  config.num_steps = 23_500  # the reference's 25 epochs of 60,000 images
  return configs.apply_preset(config, arg)
