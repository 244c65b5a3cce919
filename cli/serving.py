"""`leather serve` and `leather classify`: a local TF Serving stand-in and its client.

`serve` answers TF Serving's gRPC API for the versions the Pusher writes under a
directory, with TF Serving's warmup, batching, model config and metrics flags
and its request log;
`classify` sends image files to any TF Serving endpoint, this one or the
production container. TensorFlow and gRPC are imported inside the commands
so that `leather --help` stays instant.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import pathlib
import sys
from typing import TYPE_CHECKING

from cli.arg_types import add_client_model_name, fraction, positive_float, positive_int
from cli.errors import UserError
from cli.progress import add_verbose_flag
from cli.stop_signals import StopSignals
from models.serving_contract import DEFAULT_MODEL_NAME, PREDICT_IMAGE_SIGNATURE
from serving.batching_parameters import DEFAULT_BATCHING, BatchingParameters, read_batching_parameters
from serving.limits import MIB, ServingLimits
from serving.request_log_settings import RequestLogSettings
from serving.version_staging import DEFAULT_LOAD_TIMEOUT

if TYPE_CHECKING:
    from serving.rest import RestFront
    from serving.server import ServingServer


def register(commands: argparse._SubParsersAction) -> None:
    """Adds the `serve` and `classify` sub-commands."""
    serve = commands.add_parser(
        "serve",
        help="serve pushed model versions over TF Serving's gRPC API",
        description="Serve the newest version under --model-dir (or the models of --model-config-file) over "
        "TF Serving's gRPC API (PredictionService, ModelService), picking up newly pushed versions while running.",
    )
    serve.add_argument(
        "--model-dir", type=pathlib.Path,
        help="the Pusher's directory, one numbered subdirectory (holding saved_model.pb) per version "
        "(default: the base_path of --model-config-file; refused beside a file of several models)",
    )
    serve.add_argument(
        "--model-name", help=f"name clients put in model_spec.name (default: {DEFAULT_MODEL_NAME}, "
        "or the name in --model-config-file; refused beside a file of several models)",
    )
    serve.add_argument(
        "--model-config-file", type=pathlib.Path, metavar="FILE",
        help="TF Serving's model config (text ModelServerConfig): one or more models, each served under its name "
        "from its base_path with its version policy and version_labels such as stable and canary; read again "
        "when it changes (models added, removed, relabelled)",
    )
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all interfaces)")
    serve.add_argument("--port", type=_port, default=8500, help="gRPC port (default: 8500, as TF Serving)")
    serve.add_argument(
        "--rest-port", type=_port,
        help="also answer TF Serving's REST API (/v1/models/...) on this port (TF Serving uses 8501; default: off)",
    )
    serve.add_argument(
        "--poll-seconds", type=positive_float, default=2.0, help="how often to look for new versions"
    )
    serve.add_argument(
        "--load-timeout", type=positive_float, default=DEFAULT_LOAD_TIMEOUT, metavar="SECONDS",
        help="how long reading a version's files may take; a version still being read then has failed "
        "and the served versions stay (default: %(default)s)",
    )
    serve.add_argument(
        "--num-versions", type=positive_int,
        help="how many of the newest versions to keep loaded (TF Serving's latest policy; default 1; "
        "a model config file sets its own policy)",
    )
    serve.add_argument(
        "--enable-model-warmup", action=argparse.BooleanOptionalAction, default=True,
        help="replay each version's assets.extra/tf_serving_warmup_requests before it takes traffic "
        "(default: on, as TF Serving)",
    )
    serve.add_argument(
        "--enable-batching", action=argparse.BooleanOptionalAction, default=True,
        help="answer requests of up to max_batch_size photos from shared server-side batches (default: on, with "
        "the parameters of kubeflow/serving-config/batching_parameters.txt)",
    )
    serve.add_argument(
        "--batching-parameters-file", type=pathlib.Path, metavar="FILE",
        help="TF Serving's batching parameters (text BatchingParameters: max_batch_size, batch_timeout_micros, "
        "num_batch_threads, max_enqueued_batches, allowed_batch_sizes; TF Serving's defaults for fields left out)",
    )
    _add_limit_arguments(serve.add_argument_group("limits (docs/serving.md, Limits)"))
    _add_request_log_arguments(serve.add_argument_group("request log (docs/serving.md, Request log)"))
    add_verbose_flag(serve)
    serve.set_defaults(func=run_serve)

    classify = commands.add_parser(
        "classify",
        help="classify leather images with a running model server",
        description="Send image files to a TF Serving endpoint (production or `leather serve`) "
        "and print each image's defect probability and label.",
    )
    classify.add_argument("images", nargs="+", type=pathlib.Path, metavar="IMAGE", help="JPEG or PNG files")
    classify.add_argument("--server", required=True, metavar="HOST:PORT", help="TF Serving gRPC address")
    add_client_model_name(classify)
    classify.add_argument(
        "--signature", default=PREDICT_IMAGE_SIGNATURE,
        help="predict_image (raw image bytes, default) or serving_default (tf.Example)",
    )
    classify.add_argument("--batch-size", type=positive_int, default=16, help="images per request")
    classify.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    classify.add_argument("--timeout", type=positive_float, default=30.0, help="seconds per request")
    classify.set_defaults(func=run_classify)


# The limits other than the message size, as (flag, ServingLimits field, help); the type is the default's.
_LIMIT_FLAGS = (
    ("--max-batch-size", "max_batch_size",
     "most elements (images, tf.Examples) in one request; more get INVALID_ARGUMENT"),
    ("--max-concurrent", "max_concurrent", "requests running the model at once; others wait in line"),
    ("--max-queued", "max_queued", "requests waiting for the model; beyond, RESOURCE_EXHAUSTED (HTTP 429)"),
    ("--max-request-pixels", "max_request_pixels",
     "pixels of all the photos in one request, read from their headers before decoding; more get "
     "INVALID_ARGUMENT (HTTP 400)"),
    ("--rest-read-timeout", "rest_read_timeout",
     "seconds a REST client may take to send a whole request (first byte to end of body), or idle between requests"),
    ("--rest-header-timeout", "rest_header_timeout",
     "seconds from a REST request's first byte to the end of its headers"),
    ("--rest-max-connections", "rest_max_connections", "open REST connections; one more is answered 503"),
)


def _add_limit_arguments(limits: argparse._ArgumentGroup) -> None:
    default = ServingLimits()
    limits.add_argument(
        "--max-message-mb", type=positive_int, default=default.max_message_bytes // MIB,
        help="largest request or response in MiB; larger gRPC ones get RESOURCE_EXHAUSTED, "
        "larger REST bodies 413 (default %(default)s)",
    )
    for flag, field, help in _LIMIT_FLAGS:
        value = getattr(default, field)
        kind = positive_float if isinstance(value, float) else positive_int
        limits.add_argument(flag, dest=field, type=kind, default=value, help=f"{help} (default %(default)s)")


def _limits(args: argparse.Namespace) -> ServingLimits:
    chosen = {field: getattr(args, field) for _, field, _ in _LIMIT_FLAGS}
    return ServingLimits(max_message_bytes=args.max_message_mb * MIB, **chosen)


# The request log's settings, as (flag, RequestLogSettings field, help); each flag's dest is "log_" + field.
_LOG_FLAGS = (
    ("--log-sample-rate", "sample_rate",
     "share of successful requests logged, 0 to 1: drift statistics need a sample, not a second copy of every photo"),
    ("--log-max-file-bytes", "max_file_bytes", "a log file is completed once the next record would take it past this"),
    ("--log-max-file-seconds", "max_file_seconds", "... or once it has been open this many seconds"),
    ("--log-max-files", "max_files", "log files kept in DIR; the oldest are deleted"),
    ("--log-max-queued", "max_queued", "sampled requests waiting to be written; more are dropped and counted"),
)


def _add_request_log_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--request-log", type=_log_directory, metavar="DIR",
        help="write a sample of the successful Predict and Classify requests to DIR as TF Serving's PredictionLog "
        "TFRecords, never delaying a request (default: off)",
    )
    defaults = {field.name: field.default for field in dataclasses.fields(RequestLogSettings)}
    for flag, field, help in _LOG_FLAGS:
        value = defaults[field]
        kind = fraction if field == "sample_rate" else positive_float if isinstance(value, float) else positive_int
        group.add_argument(flag, type=kind, metavar=field.upper(), help=f"{help} (default {value})")


def _request_log(args: argparse.Namespace) -> RequestLogSettings | None:
    """The request log's settings, or None without --request-log; its other flags alone are refused."""
    chosen = {field: getattr(args, f"log_{field}") for _, field, _ in _LOG_FLAGS}
    chosen = {field: value for field, value in chosen.items() if value is not None}
    if args.request_log is None:
        if chosen:
            flags = ", ".join(flag for flag, field, _ in _LOG_FLAGS if field in chosen)
            raise UserError(f"{flags}: the request log is off without --request-log DIR")
        return None
    return RequestLogSettings(args.request_log, **chosen)


def run_serve(args: argparse.Namespace) -> int:
    """Serves until SIGINT or SIGTERM, then lets requests in flight finish and completes the request log."""
    batching = _batching(args)
    request_log = _request_log(args)
    model_dir, model_name = _model_dir_and_name(args)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    from serving.server import ServingServer

    try:
        server = ServingServer(
            model_dir,
            model_name,
            host=args.host,
            port=args.port,
            poll_seconds=args.poll_seconds,
            num_versions=args.num_versions or 1,
            limits=_limits(args),
            batching=batching,
            model_config_file=args.model_config_file,
            warm_up=args.enable_model_warmup,
            request_log=request_log,
            load_timeout=args.load_timeout,
        )
    except (OSError, ValueError) as error:
        raise UserError(str(error)) from error
    with StopSignals() as stop:
        try:
            server.start()
        except OSError as error:
            raise UserError(str(error)) from error
        try:
            rest = None if args.rest_port is None else _start_rest(server, args.rest_port)
        except OSError as error:
            server.stop()
            raise UserError(str(error)) from error
        stop.wait()
        if rest is not None:
            rest.stop()
        server.stop()
    return 0


def _batching(args: argparse.Namespace) -> BatchingParameters | None:
    """The batching parameters file's, the production defaults without one, or None with --no-enable-batching."""
    if not args.enable_batching:
        if args.batching_parameters_file is not None:
            raise UserError("--batching-parameters-file configures batching, which --no-enable-batching turns off")
        return None
    if args.batching_parameters_file is None:
        return DEFAULT_BATCHING
    try:
        return read_batching_parameters(args.batching_parameters_file)
    except ValueError as error:
        raise UserError(str(error)) from error


def _model_dir_and_name(args: argparse.Namespace) -> tuple[pathlib.Path | None, str | None]:
    """--model-dir and --model-name for the server, checked against the model config file; a contradiction is refused.

    A file of one model takes them as before (--model-dir replaces its base_path,
    --model-name must agree); a file of several serves each from its base_path
    under its name, and refuses them. Without a file they name the one model.
    """
    model_dir, model_name = args.model_dir, args.model_name
    if args.model_config_file is not None:
        from serving.model_config import read_model_configs

        try:
            configs = read_model_configs(args.model_config_file)
        except ValueError as error:
            raise UserError(str(error)) from error
        if args.num_versions is not None:
            raise UserError("--num-versions and --model-config-file both set the version policy; give one")
        names = ", ".join(f"'{config.name}'" for config in configs)
        if len(configs) > 1 and (model_dir is not None or model_name is not None):
            raise UserError(
                f"{args.model_config_file} lists {len(configs)} models ({names}), each served from its base_path "
                "under its name; --model-dir and --model-name are for one model: leave them out"
            )
        if model_name not in (None, configs[0].name):
            raise UserError(f"--model-name {model_name} differs from model {names} in {args.model_config_file}")
    elif model_dir is None:
        raise UserError("give --model-dir (the Pusher's directory) or a --model-config-file with a base_path")
    if model_dir is not None and not model_dir.is_dir():
        raise UserError(f"model directory {model_dir} does not exist (point --model-dir at the Pusher's output)")
    return model_dir, model_name  # the server checks the file's base_paths and names the model "leather" by default


def _start_rest(server: ServingServer, port: int) -> RestFront:
    from serving.rest import RestFront

    try:
        rest = RestFront(server.api, server.host, port, server.metrics)
    except OSError as error:
        raise OSError(f"cannot listen on {server.host}:{port} for REST: {error.strerror or error}") from error
    rest.start()
    return rest


def run_classify(args: argparse.Namespace) -> int:
    """Prints file, defect probability and label per image, as a table or as JSON."""
    images = [_read_image(path) for path in args.images]
    from serving.client import IMAGE_SIGNATURES, PredictionError, predict_images

    if args.signature not in IMAGE_SIGNATURES:
        raise UserError(f"--signature must be one of {', '.join(sorted(IMAGE_SIGNATURES))}, not {args.signature!r}")
    try:
        predictions = predict_images(
            args.server,
            images,
            model_name=args.model_name,
            signature=args.signature,
            batch_size=args.batch_size,
            timeout=args.timeout,
        )
    except PredictionError as error:
        if error.index is not None:
            raise UserError(f"{args.images[error.index]}: {error}") from error
        raise UserError(str(error)) from error
    rows = [
        {
            "file": str(path),
            "probability": prediction.probability,
            "label": prediction.label,
            "model_version": prediction.model_version,
        }
        for path, prediction in zip(args.images, predictions)
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        width = max(len(row["file"]) for row in rows)
        for row in rows:
            print(f"{row['file']:<{width}}  {row['probability']:.4f}  {row['label']}")
    return 0


def _read_image(path: pathlib.Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read image {path}: {error.strerror or error}") from error


def _log_directory(text: str) -> pathlib.Path:
    path = pathlib.Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory")
    return path


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, not {value}")
    return value
