"""The study's vocabulary and layout, importable without the ML stack (no torch, numpy-heavy or plotting
imports): what the workflow's parse step, the scripts, the benchmarks and the tests share."""
