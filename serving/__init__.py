"""Serving of the pushed leather model through TensorFlow Serving's gRPC and REST APIs.

`model_store` finds, warms up (`warmup`) and hot-swaps versions under the
Pusher's directory, `model_api` answers TF Serving's calls on them free of any
transport, within the `limits`, sharing model calls through `batching` and
naming versions by the labels of a `model_config`, which may list several
models: each is a `served_model`, kept by `model_set` and reached by name
through `model_router`; `grpc_host` and `rest` carry
those calls over gRPC and HTTP, `metrics` counts them for Prometheus,
`request_log` keeps a sample of them as TF Serving's PredictionLogs, and
`server` is the process that ties models, router, gRPC host and poller together. `client` is what `leather classify` uses, against this server or the
official TF Serving container alike. Whole-hide inspection (`inspection`) and
the monitor of the logged photos (`monitoring`) are clients of the server too
and live in their own packages.

Keras is pinned to tf-keras here, as in `cli` and `models`, because `leather
serve` may be the first importer of TensorFlow in its process and the SavedModels
it loads are trained with tf-keras (Keras 2).
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
