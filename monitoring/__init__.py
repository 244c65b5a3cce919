"""Monitoring of served photos: do the photos stations send still look like the training photos?

Apart from the server (`serving/`): the server only keeps its request log
(`serving.request_log`); reading that log and judging what it holds is a
separate job, run by `leather monitor` from cron or a Kubeflow step.
`logged_photos` reads the photos out of the log's completed files, and `skew`
describes them with the importer's descriptor graph and compares them with the
training statistics by TFDV's skew check. Finding the served model's training
statistics through ML Metadata and writing the monitor's page stay in
`pipeline/` (`served_statistics`, `monitor_page`): they read the pipeline's
records and use its report writer, a layer above this one.

Keras is pinned to tf-keras here, as in `serving` and `models`, because `skew`
may be the first importer of TensorFlow in its process.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
