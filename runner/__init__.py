"""The benchmark runner: scenario -> config -> sweep of steps -> results folder, charts and report."""
