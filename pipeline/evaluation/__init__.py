"""Evaluation in one place: what the Evaluator computes and gates on, reading a run's results back, and the report.

`spec` builds the EvalConfig (metrics, slices, gates); `run_record` finds what
the newest Evaluator, blessing and Pusher recorded in ML Metadata; `results`
reads the evaluation and rebuilds every gate decision with the numbers behind it; `summary` prints a run's outcome, with the
colour-variant table of `variants`; `report` gathers the report's data, `plots`
and `page` draw it, and `render` writes any page with its plots (the experiment
report uses it too).
"""
