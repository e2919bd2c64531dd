"""The ``fact_rfm`` and ``fact_rfm_tabular`` tasks: FACT-RFM against RFM, a plain kernel and an MLP.

``fact_rfm`` runs one RFM (``update=fact`` is FACT-RFM, ``update=agop`` ordinary RFM) on modular addition or sparse
parity, logging train and test accuracy after every fit; ``fact_rfm_tabular`` compares four learners on
scikit-learn's bundled classification sets over several random splits. The algorithm is in :mod:`rfm`.
"""

from __future__ import annotations

from harness.errors import UsageError, unknown

DATA = ("modular", "parity")


def check_rfm_args(kernel: str, update: str, bandwidth: float, ridge: float, iterations: int) -> None:
    from harness.plugins.fact.rfm import KERNELS, UPDATES

    if kernel not in KERNELS:
        raise unknown("kernel", kernel, KERNELS)
    if update not in UPDATES:
        raise unknown("update", update, UPDATES)
    if bandwidth <= 0:
        raise UsageError(f"bandwidth={bandwidth}: give a positive kernel bandwidth")
    if ridge < 0:
        raise UsageError(f"ridge={ridge}: give a ridge >= 0 (0 interpolates)")
    if iterations < 0:
        raise UsageError(f"iterations={iterations}: give a number of M updates >= 0")


class FactRFM:
    """FACT-RFM (arXiv 2507.05644) on (a + b) mod p (grokking) or on sparse parity (support recovery).

    Defaults are the modular preset's: Gaussian kernel, M_0 = I, bandwidth 1.5, near-interpolating ridge, 50 updates.
    """

    name = "fact_rfm"
    version = "1"
    primary_metric = "test_accuracy"

    def __init__(
        self,
        data: str = "modular",
        update: str = "fact",
        kernel: str = "gaussian",
        bandwidth: float = 1.5,
        ridge: float = 1e-3,
        iterations: int = 50,
        normalize: bool = True,
        p: int = 61,
        train_fraction: float = 0.5,
        n: int = 1000,
        n_test: int = 2000,
        d: int = 50,
        k: int = 3,
    ):
        """
        Args:
            data: "modular" ((a + b) mod p, one-hot pairs) or "parity" (k-sparse parity of d +-1 bits).
            update: "fact" (FACT-RFM), "fact_geo", "agop" (RFM) or "agop_sqrt".
            kernel, bandwidth, ridge, iterations, normalize: the RFM (see rfm.RFMConfig).
            p, train_fraction: modular data.  n, n_test, d, k: parity data.
        """
        from harness.plugins.fact.rfm import RFMConfig

        if data not in DATA:
            raise unknown("data", data, DATA)
        check_rfm_args(kernel, update, bandwidth, ridge, iterations)
        if p < 2:
            raise UsageError(f"p={p}: give a modulus >= 2")
        if not 0 < train_fraction < 1:
            raise UsageError(f"train_fraction={train_fraction}: give a fraction in (0, 1)")
        if n < 2 or n_test < 1:
            raise UsageError(f"n={n}, n_test={n_test}: give n >= 2 training and n_test >= 1 test points")
        if not 1 <= k <= d:
            raise UsageError(f"k={k}, d={d}: the parity's support size k must be between 1 and d")
        self.data = data
        self.config = RFMConfig(
            kernel=kernel, bandwidth=bandwidth, ridge=ridge, iterations=iterations, update=update, normalize=normalize
        )
        self.modular = {"p": p, "train_fraction": train_fraction}
        self.parity = {"n": n, "n_test": n_test, "d": d, "k": k}

    def split(self, ctx):
        from harness.plugins.fact.data import modular_addition, sparse_parity

        from harness.seeding import generator

        g = generator(ctx.seed, "data", self.data)
        if self.data == "modular":
            return modular_addition(self.modular["p"], self.modular["train_fraction"], g)
        return sparse_parity(self.parity["n"], self.parity["n_test"], self.parity["d"], self.parity["k"], g)

    def structure(self, M) -> dict[str, float]:
        """What the learned M should show: mass on the parity's support, or circulant blocks for (a + b) mod p."""
        from harness.plugins.fact.structure import circulant_fraction, support_mass

        if self.data == "parity":
            return {"support_mass": support_mass(M, self.parity["k"])}
        return {"circulant_fraction": circulant_fraction(M, self.modular["p"])}

    def run(self, ctx) -> dict[str, float]:
        import torch
        from harness.plugins.fact.data import accuracy
        from harness.plugins.fact.plots import plot_accuracy, plot_feature_matrix
        from harness.plugins.fact.rfm import rfm

        torch.set_num_threads(1)
        split = self.split(ctx)
        history: list[dict] = []

        def on_fit(t, model):
            train, test = model.predict(split.X_train), model.predict(split.X_test)
            values = {
                "train_accuracy": accuracy(train, split.Y_train),
                "test_accuracy": accuracy(test, split.Y_test),
                "train_mse": float((train - split.Y_train).pow(2).mean()),
                "test_mse": float((test - split.Y_test).pow(2).mean()),
                **self.structure(model.M),
            }
            history.append({"iteration": t, **values})
            ctx.log(t, values)

        model = rfm(split.X_train, split.Y_train, self.config, on_fit=on_fit)
        title = f"{self.config.update} RFM, {self.data}"
        plot_accuracy(ctx.path("accuracy.png"), history, title)
        plot_feature_matrix(ctx.path("feature_matrix.png"), model.M, f"learned M ({title})")
        torch.save(model.M, ctx.path("feature_matrix.pt"))
        final = {k: v for k, v in history[-1].items() if k != "iteration"}
        best = max(history, key=lambda h: h["test_accuracy"])
        return {
            **final,
            "best_test_accuracy": best["test_accuracy"],
            "first_iteration_test_accuracy_0.9": next(
                (float(h["iteration"]) for h in history if h["test_accuracy"] >= 0.9), float("nan")
            ),
        }

    @staticmethod
    def sweep_summary(points: list[dict], ctx) -> dict[str, float]:
        """A sweep over n: test accuracy against the RFM iteration, one line per (update, n), mean over seeds."""
        from harness.evaluation import mean_stderr
        from harness.report import plot_lines
        from harness.store import read_jsonl

        curves: dict[tuple, list[list[float]]] = {}
        for point in points:
            series = [r for r in read_jsonl(point["dir"] / "metrics.jsonl") if "test_accuracy" in r]
            key = (point["args"].get("update", "fact"), int(point["args"].get("n", 0)))
            curves.setdefault(key, []).append([r["test_accuracy"] for r in sorted(series, key=lambda r: r["step"])])
        lines, errors = {}, {}
        for (update, n), runs in sorted(curves.items()):
            steps = min(len(r) for r in runs)
            stats = [mean_stderr([r[t] for r in runs]) for t in range(steps)]
            lines[f"{update}, n={n}"] = (list(range(steps)), [m for m, _ in stats])
            errors[f"{update}, n={n}"] = [s for _, s in stats]
        plot_lines(
            ctx.path("test_accuracy_vs_iteration.png"),
            lines,
            xlabel="RFM iteration (M updates)",
            ylabel="test accuracy",
            title="test accuracy over iterations",
            errors=errors,
        )
        return {}


METHODS = ("fact", "agop", "kernel", "mlp")


class FactRFMTabular:
    """FACT-RFM vs AGOP-RFM vs the plain kernel (M = I) vs an MLP on scikit-learn's bundled classification sets.

    Every method sees the same ``splits`` random stratified splits of each dataset (features standardised on the
    training part); metrics are means over splits with their standard error, and paired differences against
    FACT-RFM (same split) with theirs. Hyperparameters are fixed, not tuned per dataset (the paper tunes them on
    validation data): Laplace kernel, bandwidth 10 and ridge 1e-3 as in the RFM reference code, ``iterations``
    updates; the MLP has one hidden layer of ``mlp_width`` ReLUs, AdamW, trained by the harness Trainer.
    """

    name = "fact_rfm_tabular"
    version = "1"
    primary_metric = "fact/test_accuracy"

    def __init__(
        self,
        datasets: str = "iris,wine,breast_cancer,digits",
        splits: int = 5,
        test_fraction: float = 0.2,
        kernel: str = "laplace",
        bandwidth: float = 10.0,
        ridge: float = 1e-3,
        iterations: int = 5,
        mlp_steps: int = 1000,
        mlp_width: int = 256,
        mlp_lr: float = 1e-3,
    ):
        from harness.plugins.fact.data import SKLEARN_SETS

        self.datasets = [s.strip() for s in str(datasets).split(",") if s.strip()]
        if not self.datasets:
            raise UsageError("datasets is empty: give names, e.g. datasets=iris,wine")
        for name in self.datasets:
            if name not in SKLEARN_SETS:
                raise unknown("dataset", name, SKLEARN_SETS)
        check_rfm_args(kernel, "fact", bandwidth, ridge, iterations)
        if splits < 1:
            raise UsageError(f"splits={splits}: give at least one split")
        if not 0 < test_fraction < 1:
            raise UsageError(f"test_fraction={test_fraction}: give a fraction in (0, 1)")
        if mlp_steps < 1 or mlp_width < 1 or mlp_lr <= 0:
            raise UsageError("mlp_steps, mlp_width and mlp_lr must be positive")
        self.splits, self.test_fraction = splits, test_fraction
        self.rfm = {"kernel": kernel, "bandwidth": bandwidth, "ridge": ridge, "iterations": iterations}
        self.mlp = {"steps": mlp_steps, "width": mlp_width, "lr": mlp_lr}

    def rfm_accuracy(self, split, update: str, iterations: int) -> float:
        from harness.plugins.fact.data import accuracy
        from harness.plugins.fact.rfm import RFMConfig, rfm

        config = RFMConfig(**{**self.rfm, "iterations": iterations}, update=update)
        model = rfm(split.X_train, split.Y_train, config)
        return accuracy(model.predict(split.X_test), split.Y_test)

    def mlp_accuracy(self, ctx, split, run_name: str) -> float:
        """Minibatches of 64 (the whole set when smaller) through ``ctx.trainer``; test accuracy at the end."""
        import torch
        from harness.plugins.fact.data import accuracy

        from harness.models import MLP
        from harness.training import TrainConfig, seed_everything

        X, labels = split.X_train.float(), split.Y_train.argmax(1)
        seed_everything(ctx.seed_for("mlp", run_name))
        model = MLP(X.shape[1], self.mlp["width"], split.Y_train.shape[1], depth=2, task="classification")
        batch_size = min(64, len(X))

        def batches(step, g):
            index = torch.randint(0, len(X), (batch_size,), generator=g)
            return {"input_ids": X[index], "targets": labels[index]}

        config = TrainConfig(
            steps=self.mlp["steps"],
            batch_size=batch_size,
            lr=self.mlp["lr"],
            weight_decay=0.0,
            log_every=max(1, self.mlp["steps"] // 10),
            seed=ctx.seed_for("mlp-batches", run_name),
        )
        ctx.trainer(model, config, batches, name=run_name, progress=False).fit()
        with torch.no_grad():
            return accuracy(model(split.X_test.float()).double(), split.Y_test)

    def run(self, ctx) -> dict[str, float]:
        import torch
        from harness.plugins.fact.data import sklearn_classification
        from harness.plugins.fact.plots import write_table

        from harness.evaluation import mean_stderr
        from harness.seeding import generator

        torch.set_num_threads(1)
        scores = {(d, m): [] for d in self.datasets for m in METHODS}
        for dataset in self.datasets:
            for s in range(self.splits):
                split = sklearn_classification(dataset, self.test_fraction, generator(ctx.seed, "split", dataset, s))
                row = {
                    "fact": self.rfm_accuracy(split, "fact", self.rfm["iterations"]),
                    "agop": self.rfm_accuracy(split, "agop", self.rfm["iterations"]),
                    "kernel": self.rfm_accuracy(split, "fact", 0),
                    "mlp": self.mlp_accuracy(ctx, split, f"mlp_{dataset}_{s}"),
                }
                ctx.record([{"id": f"{dataset}/{s}", "dataset": dataset, "split": s, **row}])
                for method, value in row.items():
                    scores[dataset, method].append(value)
        metrics = {}
        for dataset in self.datasets:
            for method in METHODS:
                values = scores[dataset, method]
                metrics[f"{dataset}/{method}/test_accuracy"], metrics[f"{dataset}/{method}/test_accuracy_stderr"] = (
                    mean_stderr(values)
                )
                if method != "fact":  # paired over splits: FACT-RFM minus the other method
                    diffs = [a - b for a, b in zip(scores[dataset, "fact"], values)]
                    metrics[f"{dataset}/fact_minus_{method}"], metrics[f"{dataset}/fact_minus_{method}_stderr"] = (
                        mean_stderr(diffs)
                    )
        per_split = {
            method: [sum(scores[d, method][s] for d in self.datasets) / len(self.datasets) for s in range(self.splits)]
            for method in METHODS
        }  # each dataset weighs the same
        for method in METHODS:
            metrics[f"{method}/test_accuracy"], metrics[f"{method}/test_accuracy_stderr"] = mean_stderr(
                per_split[method]
            )
            if method != "fact":
                diffs = [a - b for a, b in zip(per_split["fact"], per_split[method])]
                metrics[f"fact_minus_{method}"], metrics[f"fact_minus_{method}_stderr"] = mean_stderr(diffs)
        metrics["test_accuracy"], metrics["test_accuracy_stderr"] = (
            metrics["fact/test_accuracy"],
            metrics["fact/test_accuracy_stderr"],
        )
        write_table(ctx.path("table.md"), metrics, self.datasets, METHODS)
        return metrics
