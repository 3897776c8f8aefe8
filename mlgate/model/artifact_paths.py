"""The forms of W&B paths mlgate accepts, in one place: settings, the dispatch payload and the registry.

Every part starts with a letter, digit or ``_`` (so never ``.`` or ``..``) and is ASCII: these values
come from users and webhooks and end up in API calls, branch names and file names.
"""

from __future__ import annotations

import re

PART = r"\w[\w.-]{0,127}"
COLLECTION = rf"(?:{PART}/{PART}|wandb-registry-{PART})/{PART}"
"""``entity/model-registry/name`` (legacy) or ``wandb-registry-model/collection``."""

NAME = re.compile(PART, re.ASCII)
COLLECTION_PATH = re.compile(COLLECTION, re.ASCII)
VERSION_PATH = re.compile(rf"{COLLECTION}:{PART}", re.ASCII)
"""A collection (or ``entity/project/name``) with ``:vN`` or ``:alias``."""
VERSION_STRING = re.compile(rf"{PART}/{PART}/{PART}:{PART}", re.ASCII)
"""W&B's ``${artifact_version_string}``: ``entity/project/name:vN``."""
ARTIFACT = re.compile(rf"{PART}(/{PART}){{1,2}}:{PART}", re.ASCII)
