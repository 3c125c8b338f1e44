"""gan_jax: generative adversarial networks in JAX and Flax."""
