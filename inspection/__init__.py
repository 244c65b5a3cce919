"""Whole-hide inspection: where the defects of a large photo of leather are, as a map and numbered regions.

A client of the served model, apart from the server (`serving/`) because it is
what a person runs against TF Serving or `leather serve` alike, not part of
answering requests. `client` asks the hide signature for every tile of a photo
in one request; `scoring` scores the tiles against the rest of their own hide
(and clean reference photos) with the `settings` `leather inspect` exposes;
`whole_hide` ties the two into an inspection. Models without the hide signature
are inspected by `patches`, cut on the same grid (`tiling`) and classified
through `serving.client`. A model with dense patch features (`dense_client`)
has every 8 px patch scored against the rest of its own hide
(`dense_inspection`); an article model's map (`article_client`) is judged at its
own threshold (`article_inspection`). All describe their `regions` alike, `maps` draws
them on the photo with a legend, and `evaluation` scores inspected hides
against their masks, as MVTec AD does.

Keras is pinned to tf-keras here, as in `serving` and `models`, because
`client` may be the first importer of TensorFlow in its process (a benchmark,
a test).
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
