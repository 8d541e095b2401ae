"""Side-by-side timings of gradxform, optax and torch.optim (``python -m benchmarks.run``)."""
