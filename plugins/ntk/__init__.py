"""ntk: (being built) a paper experiment plugin; see ../shared/papers/README.md."""
