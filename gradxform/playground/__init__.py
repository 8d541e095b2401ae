"""Test functions, optimizer trajectories and pictures of optimizers at work.

Plotting needs matplotlib (``pip install 'gradxform[demo]'``); the functions and
trajectories need only JAX.
"""
