"""Predictive conversion score for data a team already has: a CSV file of past leads with
their outcome in, a calibrated probability per lead out.

The path is generic on purpose: :mod:`~leadheat.predict.table` reads any CSV file and types
its columns, :mod:`~leadheat.predict.features` turns them into a matrix without hand work,
:mod:`~leadheat.predict.model` trains, calibrates, stores and explains gradient-boosted trees,
and :mod:`~leadheat.predict.baselines` holds what the model has to beat. LightGBM and
scikit-learn are imported inside the functions that need them, so ``leadheat --help`` stays
fast.
"""
