"""A plugin for the model tests: an attention variant and a train-step hook, from outside the core."""

from __future__ import annotations

from harness import hookimpl


def double_attention(config, layer_index):
    from harness.models.components import SelfAttention

    class DoubleAttention(SelfAttention):
        """SDPA attention whose output is doubled: easy to tell apart from the built-in one."""

        def forward(self, x):
            return 2 * super().forward(x)

    return DoubleAttention(config, layer_index)


@hookimpl
def harness_register_components(register):
    register("attention", "test_double", double_attention, description="test: SDPA attention times two")


@hookimpl
def harness_train_step(step, model, batch, captures):
    return {"hook/batch_rows": float(len(batch["input_ids"])), "hook/captured_layers": float(len(captures))}
