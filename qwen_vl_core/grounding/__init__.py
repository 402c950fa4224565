"""Grounding: boxes and points from a model's answer, in pixels of the image the user passed.

Qwen-VL models locate things ("find every signature") as JSON, ``[{"bbox_2d": [x1, y1, x2, y2],
"label": "signature"}]`` or ``{"point_2d": [x, y], ...}``, but the numbers are not pixels of the
user's image:

* Qwen3-VL writes coordinates **relative** to the image: the documentation says "normalized to a
  range of [0, 999]"; they are mapped as ``x / 1000 * width`` and clamped to the image
  (convention ``"relative-1000"``);
* Qwen2.5-VL writes **absolute pixels of the image as the server resized it** ("relative to the
  top-left corner of the scaled image", convention ``"absolute-resized"``): the server's resize
  (:func:`qwen_vl_core.tokens.image_geometry`, the documented ``smart_resize``) of the image
  *sent*, which our client may itself have downscaled first.

Which model uses which is the registry's :attr:`~qwen_vl_core.models.ModelCapabilities.grounding`
(documented for Qwen3-VL and Qwen2.5-VL; assumed for Qwen3.5, QVQ and qwen-vl-ocr from the model
they are built on; for unknown models ``"relative-1000"`` is assumed and a warning says so).
Each image's sizes (original, sent, as the model saw it) are the :class:`ImageRecord` the core
made when it resolved the image; the adapters put them in their response metadata.

.. code-block:: python

    found = grounding_from_answer(answer_text, image_record, model="qwen3-vl-plus")
    for box in found.boxes:
        print(box.label, box.rounded())
    draw_boxes("scan.png", found).save("scan-boxes.png")
"""

from .ask import aground, ground, grounding_prompt
from .draw import draw_boxes
from .mapping import grounding_convention, grounding_from_answer, to_original
from .parse import parse_grounding
from .types import (
    CONVENTIONS,
    RELATIVE_SCALE,
    Box,
    Grounding,
    GroundingParseError,
    ImageRecord,
    Point,
)

__all__ = [
    "CONVENTIONS",
    "RELATIVE_SCALE",
    "Box",
    "Point",
    "ImageRecord",
    "Grounding",
    "GroundingParseError",
    "parse_grounding",
    "grounding_convention",
    "to_original",
    "grounding_from_answer",
    "grounding_prompt",
    "ground",
    "aground",
    "draw_boxes",
]
