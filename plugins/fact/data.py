"""The FACT experiments' data: modular addition, sparse parity, a low-rank polynomial and scikit-learn's bundled
classification sets (shipped inside the scikit-learn wheel: nothing is downloaded).

Every generator takes a ``torch.Generator`` (seeded by the caller from the run seed) and returns float tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.errors import unknown

SKLEARN_SETS = ("iris", "wine", "breast_cancer", "digits")


@dataclass
class Split:
    """Train and test inputs (n, d) and targets: (n, c) one-hot / +-1 or regression values, labels (n,)."""

    X_train: torch.Tensor
    Y_train: torch.Tensor
    X_test: torch.Tensor
    Y_test: torch.Tensor


def modular_addition(p: int, train_fraction: float, g: torch.Generator) -> Split:
    """All p^2 pairs (a, b) -> (a + b) mod p; inputs concatenated one-hots (2p), targets one-hot (p)."""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.flatten(), b.flatten()  # (p^2,)
    eye = torch.eye(p, dtype=torch.float64)
    X = torch.cat([eye[a], eye[b]], dim=1)  # (p^2, 2p)
    Y = eye[(a + b) % p]  # (p^2, p)
    order = torch.randperm(p * p, generator=g)
    n_train = int(round(train_fraction * p * p))
    train, test = order[:n_train], order[n_train:]
    return Split(X[train], Y[train], X[test], Y[test])


def sparse_parity(n: int, n_test: int, d: int, k: int, g: torch.Generator) -> Split:
    """x uniform in {-1, 1}^d, y = x_0 x_1 ... x_{k-1} (the support is the first k coordinates: the kernel at
    M_0 = I is invariant to permuting coordinates, so which k makes no difference)."""
    X = torch.randint(0, 2, (n + n_test, d), generator=g).double() * 2 - 1  # (n + n_test, d)
    y = X[:, :k].prod(dim=1, keepdim=True)  # (n + n_test, 1)
    return Split(X[:n], y[:n], X[n:], y[n:])


def low_rank_polynomial(n: int, n_test: int, d: int, g: torch.Generator) -> Split:
    """x ~ N(0, I_d), y = z_1 z_2 + z_1^2 / 2 with z = U^T x for a random orthonormal U (d, 2): a rank-2 target."""
    U, _ = torch.linalg.qr(torch.randn(d, 2, generator=g, dtype=torch.float64))  # (d, 2)
    X = torch.randn(n + n_test, d, generator=g, dtype=torch.float64)
    z = X @ U  # (n + n_test, 2)
    y = (z[:, 0] * z[:, 1] + z[:, 0] ** 2 / 2)[:, None]  # (n + n_test, 1)
    return Split(X[:n], y[:n], X[n:], y[n:])


def sklearn_classification(name: str, test_fraction: float, g: torch.Generator) -> Split:
    """A bundled scikit-learn set, stratified split, features standardised with the training statistics, targets
    one-hot."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if name not in SKLEARN_SETS:
        raise unknown("dataset", name, SKLEARN_SETS)
    data = getattr(datasets, f"load_{name}")()
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=test_fraction, stratify=data.target, random_state=seed
    )
    X_train, X_test = torch.tensor(x_train, dtype=torch.float64), torch.tensor(x_test, dtype=torch.float64)
    mean, std = X_train.mean(0), X_train.std(0).clamp(min=1e-8)
    eye = torch.eye(int(data.target.max()) + 1, dtype=torch.float64)
    return Split((X_train - mean) / std, eye[torch.tensor(y_train)], (X_test - mean) / std, eye[torch.tensor(y_test)])


def accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Argmax agreement for several outputs; sign agreement for one +-1 output."""
    if targets.shape[1] == 1:
        return float((predictions.sign() == targets.sign()).double().mean())
    return float((predictions.argmax(1) == targets.argmax(1)).double().mean())
