"""Training probes the core provides, so a plugin uses them without importing another plugin: ``rank``
(:mod:`harness.probes.rank`, the spectrum of attention weight changes) and ``fact`` (:mod:`harness.probes.fact`,
the Features at Convergence Theorem residual). The ``probes`` plugin registers them for ``--probe NAME``.

The submodules import torch; this package imports nothing, so naming it stays cheap.
"""
