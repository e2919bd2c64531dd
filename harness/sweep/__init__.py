"""Sweeps: every combination of a grid of task args is one ordinary run; the sweep is a run that collects them.

``harness sweep --task T --grid "n=16,64;attention=sdpa,identity" --seeds 0,1,2`` runs each point as an ordinary
run (:func:`harness.runs.run`), so a point has its own run id, record, resume and leaderboard row, exactly as if it
had been typed by hand. Points run in spawned processes that die with the sweep (local executor) or as Ray tasks
that send their run folder back to the driver (``--executor ray``: no shared disk needed). The sweep itself is a run
in the same ``--out``: its ``metrics.json`` holds ``<metric>@<arg>=<value>,...`` for every point (the mean over
seeds, its stderr and 95% CI), ``samples.jsonl`` one record per point, and its plots a metric against a swept arg.

Re-running a sweep skips its finished points (a finished run with ``metrics.json``); a kill -9 loses no finished
point. A preset may declare the sweep (:func:`harness.sweep.spec.parse_sweep_block`); ``harness run`` on it runs
the sweep.

Modules, each one job: ``spec`` (what a sweep is, parsing), ``plan`` (resolved and validated, each point's run
request), ``engine`` (the sweep as a run), ``executors`` (local processes, Ray), ``collect`` (metrics and plots),
``command`` (the CLI), ``compare`` (two sweeps, or two arms of one, paired by seed: ``harness compare``).
Importing the package stays cheap: no torch, no ray.
"""
