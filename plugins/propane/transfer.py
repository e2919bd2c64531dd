"""``harness run --task propane_transfer --task-args source=RUN_ID``: a found prompt on another model.

The other model (the run's ``--model``) samples fresh documents from the target prompt p*; the prompt found in the
source run is re-tokenized by the other model's tokenizer from its text, and scored by the held-out KL estimate
log P(d|p*) - log P(d|p). The "! ! ..." initial prompt is scored the same way as the reference point.

Output similarity (cheap, from the same forward passes): ``agreement`` is the fraction of document positions where
the greedy next token under p equals the greedy next token under p*.
"""

from __future__ import annotations

from pathlib import Path

from harness import seeding
from harness.errors import UsageError
from harness.store import read_json


class TransferTask:
    """Evaluates the prompts of a PROPANE run (``source``: run id or run folder) on the run's model."""

    name = "propane_transfer"
    version = "1"
    primary_metric = "kl_transfer"
    variant_args = ("source",)  # prompts from different runs are different leaderboard columns

    def __init__(
        self,
        source: str | None = None,
        n_docs: int = 32,
        doc_len: int | None = None,
        chat: bool | None = None,
        max_batch_tokens: int = 8192,
    ):
        if not source:
            raise UsageError("propane_transfer needs --task-args source=RUN_ID (a harness optimize run)")
        if n_docs < 2 or (doc_len is not None and doc_len < 1):
            raise UsageError("propane_transfer: n_docs must be >= 2 and doc_len >= 1")
        self.source, self.n_docs, self.doc_len = str(source), n_docs, doc_len
        self.chat, self.max_batch_tokens = chat, max_batch_tokens

    def prompts(self, out: Path) -> list[dict]:
        """The best-prompt records of the source run (one per method)."""
        folder = Path(self.source)
        if not (folder / "best_prompt.json").exists():
            from harness.store import Index

            if not (Path(out) / "runs.db").exists():
                raise UsageError(f"source={self.source}: no runs in {out}; pass the --out of the optimize run")
            folder = Path(Index(out).get(self.source)["dir"])
        path = folder / "best_prompt.json"
        if not path.exists():
            raise UsageError(
                f"source={self.source}: {folder} has no best_prompt.json; give a finished "
                "harness optimize (propane) run"
            )
        data = read_json(path, "re-run the harness optimize run that wrote it")
        records = data.get("methods", [data])
        if not records[0].get("target_prompt"):
            raise UsageError(f"source={self.source} matched documents, not a target prompt; nothing to transfer")
        return records

    def run(self, ctx) -> dict[str, float]:
        import torch
        from harness.plugins.propane.objective import Objective
        from harness.plugins.propane.whitebox import WhiteBox

        from harness.evaluation import mean_stderr

        records = self.prompts(ctx.run.out)
        ctx.path("samples.jsonl").unlink(missing_ok=True)  # deterministic: a rerun recomputes every document
        ctx.run.update_config(source_prompts=records)
        chat = bool(ctx.model_args.get("chat", False)) if self.chat is None else self.chat
        box = WhiteBox(ctx.load_model(), chat=chat)
        template = box.template()
        target = box.encode(records[0]["target_prompt"])
        doc_len = self.doc_len or int(records[0].get("doc_len") or 32)
        docs = box.sample(
            template.prefix + target + template.suffix,
            self.n_docs,
            doc_len,
            seeding.generator(ctx.seed, "propane-transfer-documents"),
        )
        objective = Objective(box, template, docs, torch.ones_like(docs, dtype=torch.bool), self.max_batch_tokens)
        target_nll, target_argmax = objective.doc_nll_and_argmax(torch.tensor(target))
        candidates = [(r["method"], r["text"], r.get("kl_heldout")) for r in records]
        candidates.append(("init", records[0]["init"], records[0].get("kl_heldout_initial")))
        metrics, per_doc = {}, {}
        for label, text, source_kl in candidates:
            ids = box.encode(text) or [box.filler_id()]
            nll, argmax = objective.doc_nll_and_argmax(torch.tensor(ids))
            kl = (nll - target_nll).tolist()
            agreement = (argmax == target_argmax).float().mean(dim=1).tolist()
            per_doc[label] = kl
            name = "transfer" if label == records[0]["method"] else label
            metrics[f"kl_{name}"], metrics[f"kl_{name}_stderr"] = mean_stderr(kl)
            metrics[f"agreement_{name}"], metrics[f"agreement_{name}_stderr"] = mean_stderr(agreement)
            if source_kl is not None:
                metrics[f"kl_{name}_on_source"] = float(source_kl)
        ctx.record(
            [
                {
                    "id": f"doc{i}",
                    "text": box.decode(doc.tolist()),
                    **{f"kl_{label}": values[i] for label, values in per_doc.items()},
                }
                for i, doc in enumerate(docs)
            ]
        )
        return metrics
