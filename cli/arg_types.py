"""Arguments shared by the commands: a bad number is an argparse error naming the flag, exit 2."""
import argparse

from models.serving_contract import DEFAULT_MODEL_NAME


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def add_client_model_name(parser: argparse.ArgumentParser) -> None:
    """The --model-name of the commands that call a model server (classify, inspect)."""
    parser.add_argument("--model-name", "--model", dest="model_name", default=DEFAULT_MODEL_NAME,
                        help="model_spec.name of the served model, e.g. an article's name in the server's model "
                        "config file (default: %(default)s, what `leather serve` serves alone)")
