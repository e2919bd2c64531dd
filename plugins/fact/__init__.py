"""fact: the Features at Convergence Theorem on trained MLPs, and FACT-RFM (arXiv 2507.05644).

Task families: ``fact_mlp`` (W^T W against the FACT right-hand side and the AGOP over full-batch GD with L2 weight
decay), ``fact_rfm`` (FACT-RFM / RFM on modular addition or sparse parity) and ``fact_rfm_tabular`` (FACT-RFM vs
AGOP-RFM vs a plain kernel vs an MLP on scikit-learn's bundled classification sets). Nothing heavy is imported here.
"""

from __future__ import annotations

from harness import hookimpl


@hookimpl
def harness_register_tasks(register):
    from harness.plugins.fact.mlp import FactMLP
    from harness.plugins.fact.task import FactRFM, FactRFMTabular

    register("fact_mlp", FactMLP, description="FACT and NFA correlations per layer of an MLP trained to stationarity")
    register("fact_rfm", FactRFM, description="FACT-RFM (or RFM): kernel ridge regression with a learned M")
    register(
        "fact_rfm_tabular",
        FactRFMTabular,
        description="FACT-RFM vs AGOP-RFM vs plain kernel vs MLP on scikit-learn's bundled datasets",
    )
