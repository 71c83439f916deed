"""Root-cause benchmark cases: random causal DAGs with injected root-cause outliers (the
published synthetic protocol) and a simulated service call graph (ours). Both write plain
(ts, node, stat, value) frames and know the true roots by construction; neither reads
hawknb's simulator or triage."""
