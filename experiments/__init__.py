"""Configs, lecture figures and benchmarks built on the `research` package."""
