"""The training application behind `tfp-flows train`: config, runs, callbacks, distribution and figures.

run.py (one run end to end; density estimation) and variational.py (the VI branch) share common.py; config.py
checks a run's keys, distribute.py picks the tf.distribute strategy, callbacks.py holds the Keras callbacks
(atomic checkpoints, backups, the best epoch) and plots.py the figures. Nothing below train imports it.
"""
